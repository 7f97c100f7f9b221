#include "agent/agent_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

#include <CLI/CLI.hpp>
#include <cstdlib>

namespace modelcache {
namespace {

using ::testing::HasSubstr;

AgentEnvironment Environment(std::map<std::string, std::string> variables = {}) {
  AgentEnvironment environment;
  environment.variables = std::move(variables);
  environment.hostname = "host-from-uname";
  return environment;
}

absl::StatusOr<AgentConfig> Parse(std::string_view yaml, const AgentFlags& flags = {},
                                  const AgentEnvironment& environment = Environment()) {
  return ParseAgentConfig(yaml, flags, environment);
}

void ExpectInvalid(std::string_view yaml, std::string_view key, std::string_view value) {
  absl::StatusOr<AgentConfig> config = Parse(yaml);
  ASSERT_FALSE(config.ok()) << yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(std::string(key)));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(std::string(value)));
}

TEST(AgentConfig, DefaultsNeedOnlyCacheRoot) {
  absl::StatusOr<AgentConfig> config = Parse("cacheRoot: /var/cache/models\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cache_root, "/var/cache/models");
  EXPECT_EQ(config->socket, "/run/modelcache/agent.sock");
  EXPECT_EQ(config->listen_tcp, "");
  EXPECT_EQ(config->metrics_address, "0.0.0.0:9464");
  EXPECT_EQ(config->node_name, "host-from-uname");
  EXPECT_EQ(config->log_level, "info");
  EXPECT_FALSE(config->log_json);
  EXPECT_EQ(config->fill.concurrency, 16u);
  EXPECT_EQ(config->fill.chunk_size, 8ull << 20);
  EXPECT_EQ(config->fill.stall_timeout, std::chrono::seconds(30));
  EXPECT_EQ(config->fill.retry.max_attempts, 6u);
  EXPECT_TRUE(config->fill.direct_io);
  EXPECT_EQ(config->s3.region, "us-east-1");
  EXPECT_TRUE(config->caching_enabled);
  EXPECT_EQ(config->ToModelCacheOptions().quota_bytes, 0u);
}

TEST(AgentConfig, NodeNameComesFromEnvironmentBeforeHostname) {
  absl::StatusOr<AgentConfig> config =
      Parse("cacheRoot: /c\n", {}, Environment({{"NODE_NAME", "node-7"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, "node-7");
}

TEST(AgentConfig, ReadsEveryKeyOfTheFile) {
  absl::StatusOr<AgentConfig> config = Parse(R"(
cacheRoot: /data/models
socket: /tmp/agent.sock
listenTcp: 127.0.0.1:7070
metricsAddress: ""
nodeName: gpu-1
coordinator: coordinator.svc:9000
log: {level: debug, json: true}
fill:
  concurrency: 4
  chunkSize: 16Mi
  stallTimeout: 2m
  maxAttempts: 3
  directIo: false
s3:
  endpoint: http://127.0.0.1:4568
  region: eu-west-1
  pathStyle: true
  credentialsFile: /etc/aws/credentials
  profile: models
modelsCacheStorage:
  enabled: true
  storageSize: 300Gi
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->socket, "/tmp/agent.sock");
  EXPECT_EQ(config->listen_tcp, "127.0.0.1:7070");
  EXPECT_EQ(config->metrics_address, "");
  EXPECT_EQ(config->node_name, "gpu-1");
  EXPECT_EQ(config->coordinator, "coordinator.svc:9000");
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_TRUE(config->log_json);
  EXPECT_EQ(config->fill.concurrency, 4u);
  EXPECT_EQ(config->fill.chunk_size, 16ull << 20);
  EXPECT_EQ(config->fill.stall_timeout, std::chrono::seconds(120));
  EXPECT_EQ(config->fill.retry.max_attempts, 3u);
  EXPECT_FALSE(config->fill.direct_io);
  EXPECT_EQ(config->s3.credentials_file, "/etc/aws/credentials");
  EXPECT_EQ(config->s3.profile, "models");
  ModelCacheOptions options = config->ToModelCacheOptions();
  EXPECT_EQ(options.cache_root, "/data/models");
  EXPECT_EQ(options.quota_bytes, 300ull << 30);
  EXPECT_EQ(options.fill.chunk_size, 16ull << 20);
  EXPECT_EQ(options.sources.s3_endpoint, "http://127.0.0.1:4568");
  EXPECT_EQ(options.sources.s3_region, "eu-west-1");
  EXPECT_TRUE(options.sources.s3_path_style);
}

TEST(AgentConfig, FlagsOverrideTheFile) {
  AgentFlags flags;
  flags.cache_root = "/flag/root";
  flags.socket = "/flag/agent.sock";
  flags.listen_tcp = "127.0.0.1:0";
  flags.metrics_address = "127.0.0.1:0";
  flags.node_name = "flag-node";
  flags.log_level = "warn";
  flags.log_json = true;
  absl::StatusOr<AgentConfig> config =
      Parse("cacheRoot: /file/root\nsocket: /file.sock\nnodeName: file-node\n", flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cache_root, "/flag/root");
  EXPECT_EQ(config->socket, "/flag/agent.sock");
  EXPECT_EQ(config->listen_tcp, "127.0.0.1:0");
  EXPECT_EQ(config->metrics_address, "127.0.0.1:0");
  EXPECT_EQ(config->node_name, "flag-node");
  EXPECT_EQ(config->log_level, "warn");
  EXPECT_TRUE(config->log_json);
}

TEST(AgentConfig, CommandLineFlagsFillTheOverrides) {
  CLI::App app;
  AgentFlags flags;
  AddAgentFlags(app, flags);
  std::vector<std::string> args = {"--log-json", "--metrics-address", "", "--cache-root", "/x",
                                   "--config", "/etc/agent.yaml"};
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
  app.parse(args);
  EXPECT_EQ(flags.config_file, "/etc/agent.yaml");
  EXPECT_EQ(flags.cache_root, "/x");
  EXPECT_EQ(flags.metrics_address, "");
  EXPECT_EQ(flags.log_json, true);
  EXPECT_FALSE(flags.socket.has_value());
  EXPECT_FALSE(flags.log_level.has_value());
}

TEST(AgentConfig, CacheRootIsRequired) {
  absl::StatusOr<AgentConfig> config = Parse("socket: /tmp/a.sock\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("cacheRoot"));
}

TEST(AgentConfig, UnknownKeysAreNamedWithTheirPath) {
  ExpectInvalid("cacheRoot: /c\ncacheroot: /d\n", "cacheroot", "unknown key");
  ExpectInvalid("cacheRoot: /c\nfill: {chunksize: 8Mi}\n", "fill.chunksize", "unknown key");
  ExpectInvalid("cacheRoot: /c\ns3: {bucket: x}\n", "s3.bucket", "unknown key");
  ExpectInvalid("cacheRoot: /c\nmodelsCacheStorage: {size: 1Gi}\n", "modelsCacheStorage.size",
                "unknown key");
}

// yaml-cpp keeps both copies of a key written twice; the last must not win in silence.
TEST(AgentConfig, DuplicateKeysAreRefusedAtAnyDepthWithTheirLine) {
  ExpectInvalid("cacheRoot: /c\ncoordinatorTokenFile: /t\ncoordinatorTokenFile: \"\"\n",
                "line 3: coordinatorTokenFile", "duplicate key (first at line 2)");
  ExpectInvalid("cacheRoot: /c\ncoordinatorTls:\n  caFile: /ca.pem\n  enabled: true\n  caFile: \"\"\n",
                "line 5: coordinatorTls.caFile", "duplicate key (first at line 3)");
  ExpectInvalid("cacheRoot: /c\nfill: {concurrency: 4}\nfill: {chunkSize: 1Mi}\n", "line 3: fill",
                "duplicate key");
  ExpectInvalid("cacheRoot: /c\nmodelsCacheStorage: {enabled: true, enabled: false}\n",
                "modelsCacheStorage.enabled", "duplicate key");
}

TEST(AgentConfig, UnknownKeysNameTheirLine) {
  ExpectInvalid("cacheRoot: /c\n\nfill:\n  concurrency: 4\n  chunksize: 8Mi\n", "line 5: fill.chunksize",
                "unknown key");
  ExpectInvalid("cacheRoot: /c\nmodelsCacheStorage:\n  size: 1Gi\n", "line 3: modelsCacheStorage.size",
                "unknown key");
}

TEST(AgentConfig, BadValuesAreNamedWithKeyAndValue) {
  ExpectInvalid("cacheRoot: relative/path\n", "cacheRoot", "relative/path");
  ExpectInvalid("cacheRoot: /c\nsocket: agent.sock\n", "socket", "agent.sock");
  ExpectInvalid("cacheRoot: /c\nlistenTcp: nohost\n", "listenTcp", "nohost");
  ExpectInvalid("cacheRoot: /c\nmetricsAddress: 127.0.0.1:99999\n", "metricsAddress", "99999");
  ExpectInvalid("cacheRoot: /c\nlog: {level: loud}\n", "log.level", "loud");
  ExpectInvalid("cacheRoot: /c\nlog: {json: maybe}\n", "log.json", "maybe");
  ExpectInvalid("cacheRoot: /c\nfill: {concurrency: 0}\n", "fill.concurrency", "0");
  ExpectInvalid("cacheRoot: /c\nfill: {concurrency: many}\n", "fill.concurrency", "many");
  ExpectInvalid("cacheRoot: /c\nfill: {chunkSize: 8Q}\n", "fill.chunkSize", "8Q");
  ExpectInvalid("cacheRoot: /c\nfill: {chunkSize: 1Ki}\n", "fill.chunkSize", "1Ki");
  ExpectInvalid("cacheRoot: /c\nfill: {stallTimeout: soon}\n", "fill.stallTimeout", "soon");
  ExpectInvalid("cacheRoot: /c\nfill: {maxAttempts: -1}\n", "fill.maxAttempts", "-1");
  ExpectInvalid("cacheRoot: /c\ns3: {endpoint: ftp://x}\n", "s3.endpoint", "ftp://x");
  ExpectInvalid("cacheRoot: /c\ns3: {pathStyle: yes-please}\n", "s3.pathStyle", "yes-please");
  ExpectInvalid("cacheRoot: /c\nmodelsCacheStorage: {storageSize: lots}\n",
                "modelsCacheStorage.storageSize", "lots");
}

TEST(AgentConfig, FillLeaseTimesAreReadAndValidated) {
  absl::StatusOr<AgentConfig> config =
      Parse("cacheRoot: /c\nfillLease: {ttl: 2m, pollInterval: 5s, waitTimeout: 1h, "
            "progressWindow: 90s}\ncoordinatorReportInterval: 3s\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->fill_progress_window, std::chrono::seconds(90));
  EXPECT_EQ(config->coordinator_report_interval, std::chrono::seconds(3));
  EXPECT_EQ(Parse("cacheRoot: /c\n")->fill_progress_window, std::chrono::seconds(300));
  EXPECT_FALSE(Parse("cacheRoot: /c\ncoordinatorReportInterval: 0s\n").ok());
  EXPECT_EQ(config->fill_lease_ttl, std::chrono::seconds(120));
  EXPECT_EQ(config->fill_poll_interval, std::chrono::seconds(5));
  EXPECT_EQ(config->fill_wait_timeout, std::chrono::seconds(3600));
  absl::StatusOr<AgentConfig> zero = Parse("cacheRoot: /c\nfillLease: {ttl: 0s}\n");
  EXPECT_TRUE(absl::IsInvalidArgument(zero.status()));
  EXPECT_THAT(std::string(zero.status().message()), ::testing::HasSubstr("fillLease.ttl"));
  absl::StatusOr<AgentConfig> unknown = Parse("cacheRoot: /c\nfillLease: {ttlx: 1s}\n");
  EXPECT_THAT(std::string(unknown.status().message()), ::testing::HasSubstr("fillLease.ttlx"));
}

TEST(AgentConfig, BrokenYamlIsInvalidArgument) {
  absl::StatusOr<AgentConfig> config = Parse("cacheRoot: [unclosed\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AgentConfig, DisabledStorageBlockTurnsCachingOff) {
  absl::StatusOr<AgentConfig> config = Parse("cacheRoot: /c\nmodelsCacheStorage: {enabled: false}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->caching_enabled);
}

TEST(AgentConfig, ExtraVolumesAndTheTestOnlyFilesystemType) {
  absl::StatusOr<AgentConfig> config =
      Parse("cacheRoot: /c\nextraVolumes: [/old, /older]\ntestOnlyFilesystemType: tmpfs\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->extra_volumes, (std::vector<std::filesystem::path>{"/old", "/older"}));
  EXPECT_EQ(config->test_only_filesystem_type, "tmpfs");
  absl::StatusOr<AgentConfig> plain = Parse("cacheRoot: /c\n");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->extra_volumes.empty());
  EXPECT_EQ(plain->test_only_filesystem_type, "");
  ExpectInvalid("cacheRoot: /c\nextraVolumes: [relative]\n", "extraVolumes", "relative");
  ExpectInvalid("cacheRoot: /c\nextraVolumes: [/c]\n", "extraVolumes", "cacheRoot");
  ExpectInvalid("cacheRoot: /c\nextraVolumes: /old\n", "extraVolumes", "list");
}

TEST(AgentConfig, FileSourcesAndTheNetworkPolicyAreSafeByDefault) {
  absl::StatusOr<AgentConfig> config = Parse("cacheRoot: /c\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const SourceOptions sources = config->ToModelCacheOptions().sources;
  ASSERT_TRUE(sources.file_roots.has_value()) << "the agent always restricts file://";
  EXPECT_TRUE(sources.file_roots->empty()) << "no folder is allowed by default";
  EXPECT_TRUE(sources.network.enforced);
  EXPECT_TRUE(sources.network.allow.empty());
  EXPECT_TRUE(sources.network.deny.empty());
}

TEST(AgentConfig, FileSourcesAndNetworkKeysReachTheSources) {
  absl::StatusOr<AgentConfig> config = Parse(
      "cacheRoot: /c\n"
      "fileSources: [/mnt/models/, /data/weights]\n"
      "network:\n"
      "  allow: [127.0.0.1/32, \"fd00::/8\"]\n"
      "  deny: [10.0.0.0/8]\n"
      "  resolve: [\"models.internal:443:10.1.2.3\"]\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const SourceOptions sources = config->ToModelCacheOptions().sources;
  ASSERT_TRUE(sources.file_roots.has_value());
  EXPECT_EQ(*sources.file_roots, (std::vector<std::filesystem::path>{"/mnt/models", "/data/weights"}));
  ASSERT_EQ(sources.network.allow.size(), 2u);
  EXPECT_EQ(sources.network.allow[0].text, "127.0.0.1/32");
  EXPECT_EQ(sources.network.allow[1].text, "fd00::/8");
  ASSERT_EQ(sources.network.deny.size(), 1u);
  EXPECT_EQ(sources.network.deny[0].text, "10.0.0.0/8");
  EXPECT_EQ(sources.network.resolve, (std::vector<std::string>{"models.internal:443:10.1.2.3"}));
}

TEST(AgentConfig, BadFileSourcesAndNetworkValuesAreNamed) {
  ExpectInvalid("cacheRoot: /c\nfileSources: [relative/dir]\n", "fileSources", "relative/dir");
  ExpectInvalid("cacheRoot: /c\nfileSources: /one/path\n", "fileSources", "list");
  ExpectInvalid("cacheRoot: /c\nnetwork: {allow: [localhost]}\n", "network.allow", "localhost");
  ExpectInvalid("cacheRoot: /c\nnetwork: {deny: [10.1.2.3/8]}\n", "network.deny", "10.0.0.0/8");
  ExpectInvalid("cacheRoot: /c\nnetwork: {resolve: [\"h:80\"]}\n", "network.resolve", "h:80");
  ExpectInvalid("cacheRoot: /c\nnetwork: {allowed: []}\n", "network.allowed", "allow, deny, resolve");
}

TEST(AgentConfig, ScrubIsOffUnlessAnIntervalIsSet) {
  absl::StatusOr<AgentConfig> plain = Parse("cacheRoot: /c\n");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->scrub_every, std::chrono::seconds(0));
  absl::StatusOr<AgentConfig> config = Parse("cacheRoot: /c\nscrub: {every: 1d, rate: 10Mi}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->scrub_every, std::chrono::hours(24));
  EXPECT_EQ(config->scrub_bytes_per_second, 10ull << 20);
  ExpectInvalid("cacheRoot: /c\nscrub: {every: often}\n", "scrub.every", "often");
  ExpectInvalid("cacheRoot: /c\nscrub: {rate: 1Ki}\n", "scrub.rate", "1Ki");
}

TEST(AgentConfig, CredentialsFileDefaultsFollowAwsConventions) {
  EXPECT_EQ(DefaultCredentialsFile(Environment({{"HOME", "/home/u"}})), "/home/u/.aws/credentials");
  EXPECT_EQ(DefaultCredentialsFile(Environment(
                {{"HOME", "/home/u"}, {"AWS_SHARED_CREDENTIALS_FILE", "/etc/creds"}})),
            "/etc/creds");
  absl::StatusOr<AgentConfig> config = Parse("cacheRoot: /c\n", {}, Environment({{"HOME", "/h"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->s3.credentials_file, "/h/.aws/credentials");
}

// Writes `text` to `name` in `folder` and returns its path.
std::string WriteFile(const testing::TempDir& folder, std::string_view name, std::string_view text) {
  testing::WriteTestFile(folder.Path() / name, text);
  return folder.Join(name);
}

TEST(AgentConfig, LoadReadsTheConfigFileAndEnvironmentCredentials) {
  testing::TempDir folder;
  AgentFlags flags;
  flags.config_file = WriteFile(folder, "agent.yaml", "cacheRoot: /from/file\n");
  AgentEnvironment environment = Environment(
      {{"HOME", folder.Path().string()},
       {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
       {"AWS_SECRET_ACCESS_KEY", "secret"}});
  absl::StatusOr<AgentConfig> config = LoadAgentConfig(flags, environment);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cache_root, "/from/file");
  EXPECT_EQ(config->aws.access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(config->ToModelCacheOptions().sources.aws.secret_access_key, "secret");
}

TEST(AgentConfig, LoadReadsTheNamedProfileFromTheCredentialsFile) {
  testing::TempDir folder;
  std::string credentials = WriteFile(
      folder, "credentials",
      "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = d\n"
      "[models]\naws_access_key_id = MODELSKEY\naws_secret_access_key = m\n");
  AgentFlags flags;
  flags.config_file = WriteFile(folder, "agent.yaml",
                                "cacheRoot: /c\ns3:\n  credentialsFile: " + credentials +
                                    "\n  profile: models\n");
  absl::StatusOr<AgentConfig> config = LoadAgentConfig(flags, Environment());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->aws.access_key_id, "MODELSKEY");
}

TEST(AgentConfig, LoadNamesAMissingConfigFile) {
  AgentFlags flags;
  flags.config_file = "/nonexistent/agent.yaml";
  absl::StatusOr<AgentConfig> config = LoadAgentConfig(flags, Environment());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound) << config.status();
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("/nonexistent/agent.yaml"));
}

TEST(AgentConfig, LoadRejectsAnExplicitCredentialsFileThatIsMissing) {
  testing::TempDir folder;
  AgentFlags flags;
  flags.config_file =
      WriteFile(folder, "agent.yaml", "cacheRoot: /c\ns3: {credentialsFile: /nonexistent/creds}\n");
  absl::StatusOr<AgentConfig> config = LoadAgentConfig(flags, Environment());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("s3.credentialsFile"));
}

TEST(AgentConfig, LoadToleratesAMissingDefaultCredentialsFile) {
  testing::TempDir folder;
  AgentFlags flags;
  flags.cache_root = "/c";
  absl::StatusOr<AgentConfig> config =
      LoadAgentConfig(flags, Environment({{"HOME", (folder.Path() / "nohome").string()}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->aws.Anonymous());
}

TEST(AgentConfig, CoordinatorTokenInlineOrFromAFileButNotBoth) {
  absl::StatusOr<AgentConfig> inline_token =
      Parse("cacheRoot: /c\ncoordinator: 127.0.0.1:7070\ncoordinatorToken: secret\n");
  ASSERT_TRUE(inline_token.ok()) << inline_token.status();
  EXPECT_EQ(inline_token->coordinator_token, "secret");

  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "token", "from-file\n"));
  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "agent.yaml",
                                     "cacheRoot: /c\ncoordinatorTokenFile: " + dir.Join("token") + "\n"));
  AgentFlags flags;
  flags.config_file = dir.Join("agent.yaml");
  absl::StatusOr<AgentConfig> from_file = LoadAgentConfig(flags, Environment());
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->coordinator_token, "from-file");

  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "agent.yaml",
                                     "cacheRoot: /c\ncoordinatorTokenFile: " + dir.Join("absent") + "\n"));
  absl::StatusOr<AgentConfig> missing = LoadAgentConfig(flags, Environment());
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("coordinatorTokenFile"));

  ExpectInvalid("cacheRoot: /c\ncoordinatorToken: a\ncoordinatorTokenFile: /t\n",
                "coordinatorTokenFile", "not both");
}

TEST(AgentConfig, CoordinatorTlsReadsItsPemFilesAndNeedsCertAndKeyTogether) {
  absl::StatusOr<AgentConfig> plain = Parse("cacheRoot: /c\n");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->coordinator_tls.enabled);
  EXPECT_EQ(plain->coordinator_tls.ca_file, "");

  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "ca.pem", "CA PEM"));
  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "c.pem", "CERT PEM"));
  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "c.key", "KEY PEM"));
  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "agent.yaml",
                                     "cacheRoot: /c\ncoordinatorTls: {caFile: " + dir.Join("ca.pem") +
                                         ", certFile: " + dir.Join("c.pem") + ", keyFile: " +
                                         dir.Join("c.key") + "}\n"));
  AgentFlags flags;
  flags.config_file = dir.Join("agent.yaml");
  absl::StatusOr<AgentConfig> loaded = LoadAgentConfig(flags, Environment());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->coordinator_tls.ca_pem, "CA PEM");
  EXPECT_EQ(loaded->coordinator_tls.cert_pem, "CERT PEM");
  EXPECT_EQ(loaded->coordinator_tls.key_pem, "KEY PEM");

  ASSERT_TRUE(testing::WriteTestFile(dir.Path() / "agent.yaml",
                                     "cacheRoot: /c\ncoordinatorTls: {caFile: " + dir.Join("absent.pem") + "}\n"));
  absl::StatusOr<AgentConfig> missing = LoadAgentConfig(flags, Environment());
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("coordinatorTls.caFile"));

  ExpectInvalid("cacheRoot: /c\ncoordinatorTls: {enabled: true, certFile: /c.pem}\n",
                "coordinatorTls.certFile", "together");
  ExpectInvalid("cacheRoot: /c\ncoordinatorTls: {certFile: /c.pem, keyFile: /c.key}\n",
                "coordinatorTls.certFile", "needs TLS");
  ExpectInvalid("cacheRoot: /c\ncoordinatorTls: {enabled: maybe}\n", "coordinatorTls.enabled", "maybe");
  ExpectInvalid("cacheRoot: /c\ncoordinatorTls: {ca: /x}\n", "coordinatorTls.ca", "caFile");
}

TEST(AgentConfig, LeaseTtlAndStateDirHaveDefaultsPerNode) {
  absl::StatusOr<AgentConfig> config =
      Parse("cacheRoot: /c\n", {}, Environment({{"NODE_NAME", "node-7"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->lease_ttl, std::chrono::minutes(10));
  EXPECT_EQ(config->state_dir, "/c/agents/node-7");

  config = Parse("cacheRoot: /c\nleaseTtl: 90s\nstateDir: /var/lib/modelcache\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->lease_ttl, std::chrono::seconds(90));
  EXPECT_EQ(config->state_dir, "/var/lib/modelcache");

  ExpectInvalid("cacheRoot: /c\nleaseTtl: 0s\n", "leaseTtl", "0s");
  ExpectInvalid("cacheRoot: /c\nleaseTtl: soon\n", "leaseTtl", "soon");
  ExpectInvalid("cacheRoot: /c\nstateDir: relative/dir\n", "stateDir", "relative/dir");
}

TEST(AgentConfig, LogEnvironmentOverridesTheFileAndFlagsOverrideIt) {
  const std::string yaml = "cacheRoot: /c\nlog:\n  level: warn\n  json: false\n";
  AgentEnvironment environment =
      Environment({{"MODELCACHE_LOG_LEVEL", "debug"}, {"MODELCACHE_LOG_JSON", "1"}});
  absl::StatusOr<AgentConfig> from_environment = Parse(yaml, {}, environment);
  ASSERT_TRUE(from_environment.ok()) << from_environment.status();
  EXPECT_EQ(from_environment->log_level, "debug");
  EXPECT_TRUE(from_environment->log_json);

  AgentFlags flags;
  flags.log_level = "error";
  absl::StatusOr<AgentConfig> from_flags = Parse(yaml, flags, environment);
  ASSERT_TRUE(from_flags.ok()) << from_flags.status();
  EXPECT_EQ(from_flags->log_level, "error");
}

TEST(AgentConfig, BadLogEnvironmentIsNamed) {
  absl::StatusOr<AgentConfig> json =
      Parse("cacheRoot: /c\n", {}, Environment({{"MODELCACHE_LOG_JSON", "maybe"}}));
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(std::string(json.status().message()), HasSubstr("MODELCACHE_LOG_JSON"));
  EXPECT_THAT(std::string(json.status().message()), HasSubstr("maybe"));
  absl::StatusOr<AgentConfig> level =
      Parse("cacheRoot: /c\n", {}, Environment({{"MODELCACHE_LOG_LEVEL", "chatty"}}));
  ASSERT_FALSE(level.ok());
  EXPECT_THAT(std::string(level.status().message()), HasSubstr("chatty"));
}

}  // namespace
}  // namespace modelcache
