// modelcachectl's admin commands against a real coordinator with one simulated agent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "agent/coordination/coordinator_client.h"
#include "common/clock.h"
#include "tests/testing/ports.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kCtl = MODELCACHE_BINARY_DIR "/cli/modelcachectl";
const std::string kCoordinatorBinary = MODELCACHE_BINARY_DIR "/coordinator/modelcache-coordinator";

class OneModelVolume final : public LocalCacheOps {
 public:
  std::vector<v1::ModelUsage> Usage() override {
    std::lock_guard lock(mutex_);
    if (purged_) return {};
    v1::ModelUsage usage;
    usage.set_name("llama");
    usage.set_version("1");
    usage.set_size_bytes(2048);
    usage.set_last_access_unix_ms(ToUnixMillis(std::chrono::system_clock::now()) - 3'600'000);
    usage.set_state(v1::ModelUsage::READY);
    return {usage};
  }
  Space VolumeSpace() override { return Space{1 << 20, 1 << 19}; }
  absl::StatusOr<uint64_t> Purge(const std::string&, const std::string&) override {
    std::lock_guard lock(mutex_);
    purged_ = true;
    return 2048;
  }
  absl::Status Prefetch(const std::string& name, const std::string& version,
                        const std::string& source) override {
    std::lock_guard lock(mutex_);
    prefetches_.push_back(name + "@" + version + " " + source);
    return absl::OkStatus();
  }
  void ApplyCachingPolicy(const v1::CachingPolicy& policy) override {
    std::lock_guard lock(mutex_);
    policy_ = policy;
  }
  bool Purged() {
    std::lock_guard lock(mutex_);
    return purged_;
  }
  std::vector<std::string> Prefetches() {
    std::lock_guard lock(mutex_);
    return prefetches_;
  }
  v1::CachingPolicy Policy() {
    std::lock_guard lock(mutex_);
    return policy_;
  }

 private:
  std::mutex mutex_;
  bool purged_ = false;
  std::vector<std::string> prefetches_;
  v1::CachingPolicy policy_;
};

// "name@version source" of every registered source in `policy`.
std::vector<std::string> Sources(const v1::CachingPolicy& policy) {
  std::vector<std::string> sources;
  for (const v1::RegisteredSource& source : policy.sources()) {
    sources.push_back(source.name() + "@" + source.version() + " " + source.source());
  }
  return sources;
}

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(RunCtl({"models", "--help"}, {}).out.find("list"), std::string::npos)
        << "modelcachectl has no admin commands: cli::AddAdminCommands is not wired into cli/main.cc";
    port_ = testing::FreeTcpPort();
    testing::WriteTestFile(dir_.Path() / "tokens",
                           "adm admin\nmaint maintainer ops-bot\nview viewer\nagt agent\n");
    testing::WriteTestFile(dir_.Path() / "c.yaml",
                           "modelsCacheStorage: {storageSize: 1Mi, checkUnusedCachedModelsEvery: "
                           "1h, purgeUnusedCachedModelsAfter: 1d}\ncoordinator:\n  listen: "
                           "127.0.0.1:" + std::to_string(port_) + "\n  database: " +
                               dir_.Join("c.db") + "\n  tokensFile: " + dir_.Join("tokens") + "\n");
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    CoordinatorClientOptions client;
    client.target = Address();
    client.token = "agt";
    client.node_name = "node-a";
    client.volume_id = "vol-1";
    client.report_interval = 200ms;
    client.min_backoff = 50ms;
    client.max_backoff = 200ms;
    agent_ = std::make_unique<CoordinatorClient>(client, volume_);
    agent_->Start();
    ASSERT_TRUE(testing::PollUntil(
        [&] { return RunCtl({"usage", "--token", "view"}).out.find("vol-1") != std::string::npos; },
        20s, 100ms));
  }

  // On the same port and database each time (a restart keeps them).
  void StartCoordinator() {
    testing::SubprocessOptions options;
    options.argv = {kCoordinatorBinary, "--config", dir_.Join("c.yaml")};
    options.stderr_path = dir_.Join("coordinator-" + std::to_string(++coordinator_starts_) + ".log");
    auto process = testing::Subprocess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
    coordinator_ = std::move(*process);
  }

  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }

  CtlResult RunCtl(std::vector<std::string> args, std::vector<std::string> env = {"default"}) {
    static int counter = 0;
    testing::SubprocessOptions options;
    options.argv = {kCtl};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    if (!env.empty()) options.environment = {"MODELCACHE_COORDINATOR=" + Address()};
    std::string out = dir_.Join("out." + std::to_string(++counter));
    std::string err = dir_.Join("err." + std::to_string(counter));
    options.stdout_path = out;
    options.stderr_path = err;
    CtlResult result;
    auto process = testing::Subprocess::Start(options);
    if (!process.ok()) return result;
    auto exit = (*process)->WaitExit(30s);
    if (exit.ok() && exit->exited) result.exit_code = exit->code;
    result.out = testing::ReadTestFile(out);
    result.err = testing::ReadTestFile(err);
    return result;
  }

  testing::TempDir dir_;
  uint16_t port_ = 0;
  int coordinator_starts_ = 0;
  std::unique_ptr<testing::Subprocess> coordinator_;
  OneModelVolume volume_;
  std::unique_ptr<CoordinatorClient> agent_;
};

TEST_F(CtlTest, UsageAndModelsShowTablesAndJson) {
  CtlResult usage = RunCtl({"usage", "--token", "view"});
  EXPECT_EQ(usage.exit_code, 0) << usage.err;
  EXPECT_NE(usage.out.find("VOLUME"), std::string::npos) << usage.out;
  EXPECT_NE(usage.out.find("node-a"), std::string::npos) << usage.out;
  CtlResult json = RunCtl({"models", "show", "llama", "--json", "--token", "view"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NE(json.out.find("\"size_bytes\": \"2048\""), std::string::npos) << json.out;
  CtlResult nodes = RunCtl({"nodes", "--token", "view"});
  EXPECT_NE(nodes.out.find("node-a"), std::string::npos);
  EXPECT_NE(nodes.out.find("yes"), std::string::npos) << "connected";
}

TEST_F(CtlTest, DryRunThenPurgeRemovesTheModel) {
  CtlResult dry_run = RunCtl({"purge", "--dry-run", "--token", "view"});
  EXPECT_EQ(dry_run.exit_code, 0) << dry_run.err;
  EXPECT_NE(dry_run.out.find("would purge nothing"), std::string::npos) << dry_run.out;
  CtlResult purge = RunCtl({"purge", "llama@1", "--token", "adm"});
  EXPECT_EQ(purge.exit_code, 0) << purge.err;
  EXPECT_NE(purge.out.find("manual"), std::string::npos) << purge.out;
  EXPECT_TRUE(testing::PollUntil([&] { return volume_.Purged(); }, 20s));
}

TEST_F(CtlTest, UnreachableCoordinatorAndBadArgumentsExitCodes) {
  CtlResult unreachable = RunCtl({"usage", "--coordinator", "127.0.0.1:1", "--timeout", "2"});
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.err;
  CtlResult bad = RunCtl({"prefetch", "llama", "--source", "s3://b/p", "--token", "adm"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("NAME@VERSION"), std::string::npos) << bad.err;
}

// Sources belong to the registry: an admin or a maintainer registers them, a viewer may only
// look, and every change is audited with its author.
TEST_F(CtlTest, SetSourceByAdminAndMaintainerWorksAndByAViewerIsRefused) {
  CtlResult by_admin =
      RunCtl({"models", "set-source", "llama@2", "HTTP://Models.Example:80/llama/2/", "--token",
              "adm"});
  ASSERT_EQ(by_admin.exit_code, 0) << by_admin.err;
  // Stored in one spelling, the one agents compare with.
  EXPECT_THAT(by_admin.out, HasSubstr("source of llama@2: http://models.example/llama/2/"));
  CtlResult by_maintainer =
      RunCtl({"models", "set-source", "llama@3", "s3://models/llama/3/", "--token", "maint"});
  ASSERT_EQ(by_maintainer.exit_code, 0) << by_maintainer.err;

  CtlResult by_viewer = RunCtl(
      {"models", "set-source", "llama@2", "http://attacker.example/w.bin", "--token", "view"});
  EXPECT_EQ(by_viewer.exit_code, 4) << by_viewer.out;
  EXPECT_THAT(by_viewer.err, HasSubstr("permission denied"));
  EXPECT_THAT(by_viewer.err, HasSubstr("SetSource"));
  CtlResult prefix_by_viewer =
      RunCtl({"models", "set-source-prefix", "llama", "http://attacker.example/", "--token", "view"});
  EXPECT_EQ(prefix_by_viewer.exit_code, 4) << prefix_by_viewer.out;
  EXPECT_THAT(prefix_by_viewer.err, HasSubstr("permission denied"));
  CtlResult by_agent = RunCtl(
      {"models", "set-source", "llama@2", "http://attacker.example/w.bin", "--token", "agt"});
  EXPECT_EQ(by_agent.exit_code, 4) << by_agent.out;

  CtlResult show = RunCtl({"models", "show", "llama", "--token", "view"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("source prefix: none"));
  EXPECT_THAT(show.out, HasSubstr("http://models.example/llama/2/"));
  EXPECT_THAT(show.out, HasSubstr("s3://models/llama/3/"));
  EXPECT_THAT(show.out, HasSubstr("(not registered)")) << "llama@1, known from the agent's report";
  EXPECT_THAT(show.out, Not(HasSubstr("attacker")));

  // The registry travels to the agents with the caching policy.
  EXPECT_TRUE(testing::PollUntil([&] { return volume_.Policy().sources_size() == 2; }, 20s, 50ms));
  EXPECT_THAT(Sources(volume_.Policy()),
              ::testing::ElementsAre("llama@2 http://models.example/llama/2/",
                                     "llama@3 s3://models/llama/3/"));

  CtlResult audit = RunCtl({"audit", "--kind", "source", "--token", "view"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_THAT(audit.out, HasSubstr("ops-bot"));
  EXPECT_THAT(audit.out, HasSubstr("admin"));
  EXPECT_THAT(audit.out, HasSubstr("source http://models.example/llama/2/ (was not registered)"));
  EXPECT_THAT(audit.out, Not(HasSubstr("attacker")));
}

TEST_F(CtlTest, AVersionOutsideTheModelsPrefixIsRefusedNamingThePrefix) {
  CtlResult prefix =
      RunCtl({"models", "set-source-prefix", "llama", "s3://models/llama/", "--token", "maint"});
  ASSERT_EQ(prefix.exit_code, 0) << prefix.err;
  EXPECT_THAT(prefix.out, HasSubstr("must fall under s3://models/llama/"));

  for (const char* outside : {"http://attacker.example/w.bin", "s3://models/llama-evil/4/"}) {
    CtlResult refused = RunCtl({"models", "set-source", "llama@4", outside, "--token", "adm"});
    EXPECT_EQ(refused.exit_code, 4) << outside << refused.out;
    EXPECT_THAT(refused.err, HasSubstr("failed precondition")) << refused.err;
    EXPECT_THAT(refused.err, HasSubstr("outside the model's source prefix s3://models/llama/"));
    EXPECT_THAT(refused.err, HasSubstr(outside));
  }
  // A prefetch registers through the same rule.
  ASSERT_EQ(RunCtl({"enable-caching", "llama", "--token", "adm"}).exit_code, 0);
  CtlResult prefetch = RunCtl(
      {"prefetch", "llama@5", "--source", "http://attacker.example/w.bin", "--token", "maint"});
  EXPECT_EQ(prefetch.exit_code, 4) << prefetch.out;
  EXPECT_THAT(prefetch.err, HasSubstr("s3://models/llama/"));
  EXPECT_TRUE(volume_.Prefetches().empty());

  CtlResult inside = RunCtl({"models", "set-source", "llama@4", "s3://models/llama/4/", "--token", "adm"});
  EXPECT_EQ(inside.exit_code, 0) << inside.err;
  CtlResult show = RunCtl({"models", "show", "llama", "--json", "--token", "view"});
  EXPECT_THAT(show.out, HasSubstr("\"source_prefix\": \"s3://models/llama/\""));
  EXPECT_THAT(show.out, HasSubstr("\"source\": \"s3://models/llama/4/\""));
  EXPECT_THAT(show.out, Not(HasSubstr("attacker")));
  EXPECT_THAT(show.out, Not(HasSubstr("llama-evil")));

  CtlResult neither = RunCtl({"models", "set-source-prefix", "llama", "--token", "adm"});
  EXPECT_EQ(neither.exit_code, 2) << neither.err;
  CtlResult cleared = RunCtl({"models", "set-source-prefix", "llama", "--clear", "--token", "adm"});
  ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
  EXPECT_THAT(cleared.out, HasSubstr("model llama: no source prefix"));
  EXPECT_EQ(RunCtl({"models", "set-source", "llama@6", "http://mirror.example/llama/6/", "--token",
                    "adm"})
                .exit_code,
            0);
}

TEST_F(CtlTest, PrefetchRecordsItsSourceAndRefusesAnotherOne) {
  ASSERT_EQ(RunCtl({"enable-caching", "llama", "--token", "adm"}).exit_code, 0);
  CtlResult unregistered = RunCtl({"prefetch", "llama@7", "--token", "maint"});
  EXPECT_EQ(unregistered.exit_code, 4) << unregistered.out;
  EXPECT_THAT(unregistered.err, HasSubstr("model llama@7: no source is registered"));
  EXPECT_THAT(unregistered.err, HasSubstr("models set-source llama@7 URI"));

  CtlResult recorded =
      RunCtl({"prefetch", "llama@7", "--source", "s3://b/llama/7/", "--token", "maint"});
  ASSERT_EQ(recorded.exit_code, 0) << recorded.err;
  EXPECT_THAT(recorded.out, HasSubstr("prefetch of llama@7 from s3://b/llama/7/ queued on volume vol-1"));
  CtlResult other = RunCtl({"prefetch", "llama@7", "--source", "s3://b/other/", "--token", "adm"});
  EXPECT_EQ(other.exit_code, 4) << other.out;
  EXPECT_THAT(other.err, HasSubstr("source s3://b/other/ is not the registered source s3://b/llama/7/"));
  CtlResult again = RunCtl({"prefetch", "llama@7", "--token", "maint"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("from s3://b/llama/7/"));

  EXPECT_TRUE(testing::PollUntil([&] { return volume_.Prefetches().size() == 2; }, 20s, 50ms));
  EXPECT_THAT(volume_.Prefetches(),
              ::testing::ElementsAre("llama@7 s3://b/llama/7/", "llama@7 s3://b/llama/7/"));
  CtlResult audit = RunCtl({"audit", "--model", "llama", "--token", "view"});
  EXPECT_THAT(audit.out, HasSubstr("source s3://b/llama/7/ (was not registered)"));
  EXPECT_THAT(audit.out, HasSubstr("ops-bot"));
}

TEST_F(CtlTest, ACoordinatorRestartKeepsTheRegistry) {
  ASSERT_EQ(
      RunCtl({"models", "set-source-prefix", "llama", "s3://models/llama/", "--token", "adm"})
          .exit_code,
      0);
  ASSERT_EQ(RunCtl({"models", "set-source", "llama@2", "s3://models/llama/2/", "--token", "adm"})
                .exit_code,
            0);
  ASSERT_TRUE(testing::PollUntil([&] { return volume_.Policy().sources_size() == 1; }, 20s, 50ms));
  const uint64_t connections = agent_->Connections();

  coordinator_->Terminate();
  volume_.ApplyCachingPolicy(v1::CachingPolicy());  // forget it: the next one comes after the restart
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  CtlResult show;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        show = RunCtl({"models", "show", "llama", "--token", "view"});
        return show.exit_code == 0;
      },
      20s, 100ms))
      << show.err;
  EXPECT_THAT(show.out, HasSubstr("source prefix: s3://models/llama/"));
  EXPECT_THAT(show.out, HasSubstr("s3://models/llama/2/"));
  // The agent reconnects and gets the registry again.
  EXPECT_TRUE(testing::PollUntil(
      [&] { return agent_->Connections() > connections && volume_.Policy().sources_size() == 1; },
      20s, 50ms));
  EXPECT_THAT(Sources(volume_.Policy()), ::testing::ElementsAre("llama@2 s3://models/llama/2/"));
  // The prefix still holds.
  CtlResult outside =
      RunCtl({"models", "set-source", "llama@3", "http://attacker.example/w.bin", "--token", "adm"});
  EXPECT_EQ(outside.exit_code, 4) << outside.out;
}

}  // namespace
}  // namespace modelcache
