#include "coordinator/config.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

TEST(CoordinatorConfig, ParsesBothBlocks) {
  auto config = ParseCoordinatorConfig(R"(
modelsCacheStorage:
  enabled: true
  storageSize: 300Gi
  checkUnusedCachedModelsEvery: 1s
  purgeUnusedCachedModelsAfter: 2s
coordinator:
  listen: 127.0.0.1:7070
  database: /tmp/c.db
  tokensFile: /etc/tokens
  highWatermark: 0.95
  lowWatermark: 0.5
  defaultCaching: enabled
  tls: {cert: s.pem, key: s.key, clientCa: ca.pem}
  metricsAddress: 127.0.0.1:9000
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->storage.storage_size_bytes, 300ull << 30);
  EXPECT_EQ(config->storage.check_unused_every, std::chrono::seconds(1));
  EXPECT_EQ(config->storage.purge_unused_after, std::chrono::seconds(2));
  EXPECT_EQ(config->listen, "127.0.0.1:7070");
  EXPECT_EQ(config->database, "/tmp/c.db");
  EXPECT_EQ(config->tokens_file, "/etc/tokens");
  EXPECT_DOUBLE_EQ(config->high_watermark, 0.95);
  EXPECT_DOUBLE_EQ(config->low_watermark, 0.5);
  EXPECT_TRUE(config->default_caching_enabled);
  EXPECT_EQ(config->tls.client_ca_file, "ca.pem");
  EXPECT_EQ(config->metrics_address, "127.0.0.1:9000");
}

TEST(CoordinatorConfig, DefaultsWhenBlocksAreMissing) {
  auto config = ParseCoordinatorConfig("{}");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->default_caching_enabled);
  EXPECT_DOUBLE_EQ(config->high_watermark, 0.9);
  EXPECT_DOUBLE_EQ(config->low_watermark, 0.8);
}

void ExpectErrorNames(std::string_view yaml, std::string_view key, std::string_view value) {
  auto config = ParseCoordinatorConfig(yaml);
  ASSERT_FALSE(config.ok()) << yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message(config.status().message());
  EXPECT_NE(message.find(key), std::string::npos) << message;
  EXPECT_NE(message.find(value), std::string::npos) << message;
}

TEST(CoordinatorConfig, BadValuesNameKeyAndValue) {
  ExpectErrorNames("coordinator: {highWatermark: 1.5}", "coordinator.highWatermark", "1.5");
  ExpectErrorNames("coordinator: {lowWatermark: lots}", "coordinator.lowWatermark", "lots");
  ExpectErrorNames("coordinator: {defaultCaching: maybe}", "coordinator.defaultCaching", "maybe");
  ExpectErrorNames("coordinator: {listen: nope}", "coordinator.listen", "nope");
  ExpectErrorNames("coordinator: {highWatermark: 0.5, lowWatermark: 0.7}",
                   "coordinator.lowWatermark", "0.7");
  ExpectErrorNames("coordinator: {tls: {cert: a.pem}}", "coordinator.tls", "a.pem");
  ExpectErrorNames("coordinator: {colour: blue}", "coordinator.colour", "unknown key");
  ExpectErrorNames("modelsCacheStorage: {storageSize: 12Qi}", "storageSize", "12Qi");
  ExpectErrorNames("modelsCacheStorage: {purgeUnusedCachedModelsAfter: 3 fortnights}",
                   "purgeUnusedCachedModelsAfter", "3 fortnights");
}

// A repeated key used to win in silence: `tokensFile: ""` after the real one, or a second
// `coordinator:` block without it, started the coordinator with auth=off.
TEST(CoordinatorConfig, DuplicateKeysThatWouldTurnAuthOffAreRefusedWithTheirLine) {
  ExpectErrorNames("coordinator:\n  tokensFile: /etc/tokens\n  listen: 127.0.0.1:7070\n  tokensFile: \"\"\n",
                   "line 4: coordinator.tokensFile", "duplicate key (first at line 2)");
  ExpectErrorNames("coordinator:\n  tokensFile: /etc/tokens\nmodelsCacheStorage: {}\ncoordinator:\n  listen: 0.0.0.0:7070\n",
                   "line 4: coordinator", "duplicate key (first at line 1)");
  ExpectErrorNames("coordinator:\n  tls: {cert: a.pem, key: a.key, cert: b.pem}\n", "coordinator.tls.cert",
                   "duplicate key");
  ExpectErrorNames("modelsCacheStorage:\n  enabled: true\n  enabled: false\n",
                   "line 3: modelsCacheStorage.enabled", "duplicate key");
}

TEST(CoordinatorConfig, UnknownKeysAreRefusedAtEveryLevelWithTheirLine) {
  ExpectErrorNames("coordinator: {}\ncacheRoot: /var/cache\n", "line 2: cacheRoot", "unknown key");
  ExpectErrorNames("tokensFile: /etc/tokens\n", "line 1: tokensFile", "unknown key");
  ExpectErrorNames("coordinator:\n  listen: 127.0.0.1:1\n  tokenFile: /etc/tokens\n",
                   "line 3: coordinator.tokenFile", "unknown key");
  ExpectErrorNames("coordinator:\n  log:\n    colour: red\n", "line 3: coordinator.log.colour",
                   "unknown key");
  ExpectErrorNames("coordinator:\n  tls:\n    ca: ca.pem\n", "line 3: coordinator.tls.ca", "unknown key");
  ExpectErrorNames("modelsCacheStorage:\n  size: 1Gi\n", "line 2: modelsCacheStorage.size", "unknown key");
}

TEST(CoordinatorConfig, LogBlockSetsLevelAndJson) {
  absl::StatusOr<CoordinatorConfig> defaults = ParseCoordinatorConfig("coordinator: {}\n");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->log_level, "info");
  EXPECT_FALSE(defaults->log_json);
  absl::StatusOr<CoordinatorConfig> config =
      ParseCoordinatorConfig("coordinator:\n  log:\n    level: debug\n    json: true\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_TRUE(config->log_json);
  absl::StatusOr<CoordinatorConfig> bad =
      ParseCoordinatorConfig("coordinator:\n  log:\n    level: chatty\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("coordinator.log.level"), std::string::npos)
      << bad.status();
  EXPECT_NE(std::string(bad.status().message()).find("chatty"), std::string::npos);
}

}  // namespace
}  // namespace modelcache
