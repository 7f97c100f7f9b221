#include "coordinator/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

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

// The file, then MODELCACHE_LOG_LEVEL/_JSON, then the flags: merged in the config module as
// the agent's are, not in main.
TEST(CoordinatorConfig, EnvironmentOverridesTheFileAndFlagsOverrideBoth) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "c.yaml",
                                     "coordinator:\n  log:\n    level: warn\n"));
  CoordinatorFlags flags{.config_file = dir.Join("c.yaml")};
  ProcessEnvironment environment;
  absl::StatusOr<CoordinatorConfig> file_only = LoadCoordinatorConfig(flags, environment);
  ASSERT_TRUE(file_only.ok()) << file_only.status();
  EXPECT_EQ(file_only->log_level, "warn");
  EXPECT_FALSE(file_only->log_json);

  environment.variables = {{"MODELCACHE_LOG_LEVEL", "debug"}, {"MODELCACHE_LOG_JSON", "true"}};
  absl::StatusOr<CoordinatorConfig> with_environment = LoadCoordinatorConfig(flags, environment);
  ASSERT_TRUE(with_environment.ok()) << with_environment.status();
  EXPECT_EQ(with_environment->log_level, "debug");
  EXPECT_TRUE(with_environment->log_json);

  flags.log_level = "error";
  absl::StatusOr<CoordinatorConfig> with_flags = LoadCoordinatorConfig(flags, environment);
  ASSERT_TRUE(with_flags.ok()) << with_flags.status();
  EXPECT_EQ(with_flags->log_level, "error");

  environment.variables = {{"MODELCACHE_LOG_JSON", "maybe"}};
  absl::StatusOr<CoordinatorConfig> bad = LoadCoordinatorConfig(flags, environment);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("MODELCACHE_LOG_JSON"), std::string::npos)
      << bad.status();
}

TEST(CoordinatorConfig, AMissingFileIsNamed) {
  CoordinatorFlags flags{.config_file = "/nonexistent/coordinator.yaml"};
  absl::StatusOr<CoordinatorConfig> config = LoadCoordinatorConfig(flags, ProcessEnvironment{});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(config.status().message()).find("/nonexistent/coordinator.yaml"),
            std::string::npos)
      << config.status();
}

}  // namespace
}  // namespace modelcache

namespace modelcache {
namespace {

TEST(CoordinatorConfig, KubernetesBlockIsOffByDefaultAndParsesEveryKey) {
  auto defaults = ParseCoordinatorConfig("coordinator: {listen: 127.0.0.1:1}\n");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->kubernetes.enabled);
  EXPECT_EQ(defaults->kubernetes.source_namespace, "modelcache");
  EXPECT_EQ(defaults->kubernetes.release, "modelcache");
  EXPECT_EQ(defaults->kubernetes.namespace_idle_after, std::chrono::hours(24));
  auto config = ParseCoordinatorConfig(
      "modelsCacheStorage: {pvcNameSuffix: -v2}\n"
      "kubernetes:\n  enabled: true\n  kubeconfig: /k\n  sourceNamespace: cache\n  release: r1\n"
      "  namespaceIdleAfter: 2h\n  resyncEvery: 30s\n  requestLog: /tmp/r\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->kubernetes.enabled);
  EXPECT_EQ(config->kubernetes.kubeconfig, "/k");
  EXPECT_EQ(config->kubernetes.source_namespace, "cache");
  EXPECT_EQ(claims::SourceClaimName(config->kubernetes.release, config->storage.pvc_name_suffix),
            "models-cache-pvc-r1-v2");
  EXPECT_EQ(config->kubernetes.namespace_idle_after, std::chrono::hours(2));
  EXPECT_EQ(config->kubernetes.resync_every, std::chrono::seconds(30));
  EXPECT_EQ(config->kubernetes.request_log, "/tmp/r");
}

TEST(CoordinatorConfig, KubernetesBadValuesNameKeyAndValue) {
  struct Case {
    const char* yaml;
    const char* want;
  };
  for (const Case& c : {Case{"kubernetes: {enabled: yes}", "kubernetes.enabled: invalid value \"yes\""},
                        Case{"kubernetes: {namespaceIdleAfter: 0s}", "kubernetes.namespaceIdleAfter"},
                        Case{"kubernetes: {sourceNamespace: Not_A_Namespace}", "kubernetes.sourceNamespace"},
                        Case{"kubernetes: {colour: blue}", "kubernetes.colour: unknown key"},
                        Case{"modelsCacheStorage: {pvcNameSuffix: _X}\nkubernetes: {enabled: true}",
                             "modelsCacheStorage.pvcNameSuffix: invalid value \"_X\""}}) {
    auto config = ParseCoordinatorConfig(c.yaml);
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_THAT(std::string(config.status().message()), ::testing::HasSubstr(c.want)) << c.yaml;
  }
  // The suffix only matters when the copies are made.
  EXPECT_TRUE(ParseCoordinatorConfig("modelsCacheStorage: {pvcNameSuffix: _X}\n").ok());
}

TEST(CoordinatorConfig, WebhookBlockIsOffByDefaultAndParsesEveryKey) {
  auto defaults = ParseCoordinatorConfig("coordinator: {listen: 127.0.0.1:1}\n");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->webhook.enabled);
  EXPECT_EQ(defaults->webhook.listen, "0.0.0.0:8443");
  EXPECT_EQ(defaults->webhook.injection.claim_name, "models-cache-pvc-modelcache");
  auto config = ParseCoordinatorConfig(
      "modelsCacheStorage: {pvcNameSuffix: -v2}\nkubernetes: {release: r1}\n"
      "webhook:\n  enabled: true\n  listen: 127.0.0.1:9443\n  tlsCert: /c.pem\n  tlsKey: /k.pem\n  image: img:1\n"
      "  socketHostPath: /run/mc\n  agentCacheRoot: /data\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->webhook.enabled);
  EXPECT_EQ(config->webhook.listen, "127.0.0.1:9443");
  EXPECT_EQ(config->webhook.tls_cert_file, "/c.pem");
  EXPECT_EQ(config->webhook.tls_key_file, "/k.pem");
  EXPECT_EQ(config->webhook.injection.image, "img:1");
  EXPECT_EQ(config->webhook.injection.claim_name, "models-cache-pvc-r1-v2");
  EXPECT_EQ(config->webhook.injection.socket_host_path, "/run/mc");
  EXPECT_EQ(config->webhook.injection.agent_cache_root, "/data");
}

TEST(CoordinatorConfig, WebhookManagedCertificatesNeedNoFilesAndNameTheServiceDns) {
  auto config = ParseCoordinatorConfig(
      "webhook:\n  enabled: true\n  image: img:1\n  certificates:\n    managed: true\n    secret: tls\n"
      "    namespace: mc\n    service: coord\n    clusterDomain: example.org\n"
      "    mutatingWebhookConfiguration: hooks\n    validFor: 90d\n    caValidFor: 1000d\n    renewBefore: 7d\n"
      "    checkEvery: 10m\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const webhook::ManagedCertificatesConfig& certificates = config->webhook.certificates;
  EXPECT_TRUE(certificates.managed);
  EXPECT_EQ(certificates.secret, "tls");
  EXPECT_EQ(certificates.webhook_configuration, "hooks");
  EXPECT_EQ(certificates.valid_for, std::chrono::hours(90 * 24));
  EXPECT_EQ(certificates.authority_valid_for, std::chrono::hours(1000 * 24));
  EXPECT_EQ(certificates.renew_before, std::chrono::hours(7 * 24));
  EXPECT_EQ(certificates.check_every, std::chrono::minutes(10));
  EXPECT_EQ(certificates.DnsNames(),
            (std::vector<std::string>{"coord", "coord.mc", "coord.mc.svc", "coord.mc.svc.example.org"}));
  EXPECT_TRUE(config->webhook.tls_cert_file.empty());
}

TEST(CoordinatorConfig, WebhookBadValuesNameTheKey) {
  struct Case {
    std::string yaml;
    std::string names;
  };
  for (const Case& bad : {Case{"webhook: {enabled: true, tlsKey: /k, image: i}\n", "webhook.tlsCert"},
                          Case{"webhook: {enabled: true, tlsCert: /c, image: i}\n", "webhook.tlsKey"},
                          Case{"webhook: {enabled: true, tlsCert: /c, tlsKey: /k}\n", "webhook.image"},
                          Case{"webhook: {enabled: yes}\n", "webhook.enabled"},
                          Case{"webhook: {socketHostPath: run}\n", "webhook.socketHostPath"},
                          Case{"webhook: {port: 1}\n", "webhook.port"},
                          Case{"webhook: {enabled: true, image: i}\n", "webhook.tlsCert"},
                          Case{"webhook: {enabled: true, image: i, tlsCert: /c, tlsKey: /k, certificates: {managed: true}}\n",
                               "webhook.certificates.managed"},
                          Case{"webhook: {certificates: {validFor: 10d, renewBefore: 10d}}\n",
                               "webhook.certificates.renewBefore"},
                          Case{"webhook: {certificates: {secret: \"\"}}\n", "webhook.certificates.secret"},
                          Case{"webhook: {certificates: {checkEvery: 0s}}\n", "webhook.certificates.checkEvery"},
                          Case{"webhook: {certificates: {issuer: x}}\n", "webhook.certificates.issuer"}}) {
    auto config = ParseCoordinatorConfig(bad.yaml);
    ASSERT_FALSE(config.ok()) << bad.yaml;
    EXPECT_NE(config.status().message().find(bad.names), std::string::npos) << config.status();
  }
}

}  // namespace
}  // namespace modelcache
