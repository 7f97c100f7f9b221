// modelcachectl's admin commands against a real coordinator with one simulated agent.
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "agent/coordinator_client.h"
#include "common/clock.h"
#include "tests/testing/ports.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;

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
  absl::Status Prefetch(const std::string&, const std::string&, const std::string&) override {
    return absl::OkStatus();
  }
  void ApplyCachingPolicy(const v1::CachingPolicy&) override {}
  bool Purged() {
    std::lock_guard lock(mutex_);
    return purged_;
  }

 private:
  std::mutex mutex_;
  bool purged_ = false;
};

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
    testing::WriteTestFile(dir_.Path() / "tokens", "adm admin\nview viewer\nagt agent\n");
    testing::WriteTestFile(dir_.Path() / "c.yaml",
                           "modelsCacheStorage: {storageSize: 1Mi, checkUnusedCachedModelsEvery: "
                           "1h, purgeUnusedCachedModelsAfter: 1d}\ncoordinator:\n  listen: "
                           "127.0.0.1:" + std::to_string(port_) + "\n  database: " +
                               dir_.Join("c.db") + "\n  tokensFile: " + dir_.Join("tokens") + "\n");
    testing::SubprocessOptions options;
    options.argv = {kCoordinatorBinary, "--config", dir_.Join("c.yaml")};
    options.stderr_path = dir_.Join("coordinator.log");
    auto process = testing::Subprocess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
    coordinator_ = std::move(*process);
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

}  // namespace
}  // namespace modelcache
