// Pod leases end to end: the real coordinator (unused models purged after 2s, checked every
// second) and two real agents sharing one cache volume, with an nginx origin, all on
// 127.0.0.1. A model a pod holds through `modelcachectl hold --every` outlives the purge of
// an unheld one; once the sidecar is stopped (SIGTERM: it releases the lease) it goes too,
// and `modelcachectl audit` shows both purges with their reason and bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <regex>

#include "agent/store/layout.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/source_access.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::PollUntil;
using testing::Subprocess;
using testing::SubprocessOptions;

const std::string kCtlBinary = MODELCACHE_BINARY_DIR "/cli/modelcachectl";
constexpr auto kDeadline = 30s;

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

using testing::AgentProcess;

class AgentLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path origin_root = dir_.Path() / "origin";
    std::vector<v1::ManifestFile> files = testing::WriteRandomModel(
        origin_root / "m", {{"config.json", 1234}, {"weights/w.bin", 300u << 10}});
    for (const v1::ManifestFile& file : files) model_bytes_ += file.size();
    ASSERT_TRUE(testing::WriteTestFile(origin_root / "m" / "modelcache.json",
                                       testing::HttpListingJson(files)));
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
        testing::NginxServer::Start({.root = origin_root.string()});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);

    testing::WriteTestFile(dir_.Path() / "tokens", "adm admin\nview viewer\nagt agent\n");
    testing::WriteTestFile(dir_.Path() / "agent-token", "agt\n");
    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start(
            {.directory = dir_.Path(),
             .storage_yaml = "{storageSize: 1Gi, checkUnusedCachedModelsEvery: 1s, "
                             "purgeUnusedCachedModelsAfter: 2s}",
             .tokens_file = dir_.Path() / "tokens"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);

    // Both agents on one volume. Short leases: only renewals keep a model held.
    ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a"));
    ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[1], "node-b"));
  }

  // Starts an agent and waits until it holds the coordinator's policy.
  void StartAgent(std::unique_ptr<AgentProcess>& agent, const std::string& node) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> started = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = node,
         .cache_root = CacheRoot(),
         .socket = dir_.Path() / ("run-" + node) / "agent.sock",
         .coordinator = Address(),
         .coordinator_token_file = dir_.Path() / "agent-token",
         .network_allow = testing::LoopbackOrigins(),  // the origin listens on 127.0.0.1
         .extra_yaml = "leaseTtl: 3s\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    agent = *std::move(started);
    ASSERT_TRUE(agent->WaitForLogLine("caching policy from the coordinator", kDeadline))
        << agent->Log();
  }

  fs::path CacheRoot() const { return dir_.Path() / "cache"; }
  fs::path ModelDir(const std::string& version) const {
    return CacheRoot() / "models" / "m" / version;
  }
  std::string Address() const { return coordinator_->Address(); }

  SubprocessOptions CtlOptions(std::vector<std::string> args, const AgentProcess* agent) {
    std::string tag = std::to_string(++ctl_runs_);
    SubprocessOptions options;
    options.argv = {kCtlBinary};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    // No $HOSTNAME: a fetch takes a lease only when the test names a holder.
    options.environment = {"MODELCACHE_DISABLE=", "AIOLI_DISABLE_MODEL_CACHE=", "HOSTNAME=",
                           "MODELCACHE_TOKEN=", "MODELCACHE_COORDINATOR=" + Address(),
                           "MODELCACHE_SOCKET=" +
                               (agent ? agent->Socket().string() : dir_.Join("no-agent.sock"))};
    options.stdout_path = dir_.Join("ctl-" + tag + ".out");
    options.stderr_path = dir_.Join("ctl-" + tag + ".err");
    return options;
  }

  CtlResult Ctl(std::vector<std::string> args, const AgentProcess* agent = nullptr) {
    SubprocessOptions options = CtlOptions(std::move(args), agent);
    CtlResult result;
    absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(options);
    if (!process.ok()) {
      ADD_FAILURE() << process.status();
      return result;
    }
    absl::StatusOr<testing::ExitStatus> exit = (*process)->WaitExit(60s);
    EXPECT_TRUE(exit.ok()) << "modelcachectl did not finish: " << exit.status();
    if (exit.ok() && exit->exited) result.exit_code = exit->code;
    result.out = testing::ReadTestFile(options.stdout_path);
    result.err = testing::ReadTestFile(options.stderr_path);
    return result;
  }

  CtlResult Fetch(const AgentProcess& agent, const std::string& version, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"fetch", "--model", "m", "--version", version, "--source",
                                     origin_->BaseUrl() + "/m/"};
    args.insert(args.end(), more.begin(), more.end());
    return Ctl(std::move(args), &agent);
  }

  // The audit log as JSON, only model m.
  std::string AuditJson() { return Ctl({"audit", "--model", "m", "--json", "--token", "view"}).out; }

  testing::TempDir dir_;
  uint64_t model_bytes_ = 0;
  std::unique_ptr<testing::NginxServer> origin_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agents_[2];
  int ctl_runs_ = 0;
};

TEST_F(AgentLeasesTest, HeldModelOutlivesTheUnusedPurgeUntilItsHolderReleasesIt) {
  AgentProcess& pod_node = *agents_[1];  // the commands for the volume go to node-a: the lease is not its own
  // The init container fetches with a holder (a 3s lease), the sidecar keeps renewing it.
  CtlResult fetched = Fetch(pod_node, "v1", {"--holder", "pod-1"});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err << pod_node.Log();
  SubprocessOptions sidecar_options = CtlOptions(
      {"hold", "--model", "m", "--version", "v1", "--holder", "pod-1", "--every", "1s"}, &pod_node);
  absl::StatusOr<std::unique_ptr<Subprocess>> sidecar = Subprocess::Start(sidecar_options);
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  auto sidecar_out = [&] { return testing::ReadTestFile(sidecar_options.stdout_path); };
  // Five renewals: the fetch's own 3s lease is over, only the sidecar holds the model now.
  ASSERT_TRUE(PollUntil([&] { return Count(sidecar_out(), "holding m@v1 for pod-1") >= 5; },
                        kDeadline, 100ms))
      << sidecar_out() << testing::ReadTestFile(sidecar_options.stderr_path);
  EXPECT_TRUE(fs::exists(ModelDir("v1")));

  // An unheld model, fetched later (so used more recently than v1), goes after 2s.
  CtlResult unheld = Fetch(*agents_[0], "v2");
  ASSERT_EQ(unheld.exit_code, 0) << unheld.err;
  std::string audit;
  ASSERT_TRUE(PollUntil(
      [&] {
        audit = AuditJson();
        return audit.find("\"version\": \"v2\"") != std::string::npos;
      },
      kDeadline, 200ms))
      << audit << coordinator_->Log();
  EXPECT_TRUE(PollUntil([&] { return !fs::exists(ModelDir("v2")); }, kDeadline, 50ms));
  // The pass that took v2 saw v1 unused for longer, and kept it for its lease.
  EXPECT_TRUE(fs::exists(ModelDir("v1")));
  EXPECT_THAT(audit, Not(HasSubstr("\"version\": \"v1\"")));
  CtlResult stat = Ctl({"stat", "--model", "m", "--version", "v1"}, &pod_node);
  EXPECT_EQ(stat.exit_code, 0) << stat.err;

  // The pod ends: SIGTERM to the sidecar releases the lease, and the next pass purges v1.
  ASSERT_TRUE((*sidecar)->Signal(SIGTERM).ok());
  absl::StatusOr<testing::ExitStatus> exit = (*sidecar)->WaitExit(kDeadline);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->Success()) << exit->ToString() << testing::ReadTestFile(sidecar_options.stderr_path);
  EXPECT_THAT(sidecar_out(), HasSubstr("released m@v1 for pod-1"));
  EXPECT_TRUE(PollUntil([&] { return !fs::exists(ModelDir("v1")); }, kDeadline, 50ms))
      << agents_[0]->Log() << pod_node.Log();
  ASSERT_TRUE(PollUntil(
      [&] {
        audit = AuditJson();
        return audit.find("\"version\": \"v1\"") != std::string::npos;
      },
      kDeadline, 200ms))
      << audit;

  // Both purges, newest first, with their reason and the bytes they freed.
  EXPECT_LT(audit.find("\"version\": \"v1\""), audit.find("\"version\": \"v2\"")) << audit;
  EXPECT_EQ(Count(audit, "\"reason\": \"unused: last access "), 2u) << audit;
  // v2 is in node-a's index (its manifest's bytes); node-a purged v1 without knowing it (the
  // bytes it deleted, cache bookkeeping files included).
  std::vector<uint64_t> freed;
  std::regex bytes_freed("\"bytes_freed\": \"([0-9]+)\"");
  for (auto match = std::sregex_iterator(audit.begin(), audit.end(), bytes_freed);
       match != std::sregex_iterator(); ++match) {
    freed.push_back(std::stoull((*match)[1]));
  }
  ASSERT_EQ(freed.size(), 2u) << audit;
  EXPECT_GE(freed[0], model_bytes_) << audit;
  EXPECT_EQ(freed[1], model_bytes_) << audit;
  CtlResult table = Ctl({"audit", "--token", "view"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("m@v1"));
  EXPECT_THAT(table.out, HasSubstr("m@v2"));
  EXPECT_THAT(table.out, HasSubstr("unused: last access"));
  EXPECT_THAT(table.out, HasSubstr("node-a"));
}

TEST_F(AgentLeasesTest, HoldOnceAndReleaseAnswerFromTheAgent) {
  const AgentProcess& agent = *agents_[0];
  CtlResult held = Ctl({"hold", "--model", "m", "--version", "v9", "--holder", "pod-9", "--once"},
                       &agent);
  ASSERT_EQ(held.exit_code, 0) << held.err;
  EXPECT_THAT(held.out, HasSubstr("holding m@v9 for pod-9 until "));
  CtlResult released = Ctl({"hold", "--model", "m", "--version", "v9", "--holder", "pod-9",
                            "--release"}, &agent);
  ASSERT_EQ(released.exit_code, 0) << released.err;
  EXPECT_THAT(released.out, HasSubstr("released m@v9 for pod-9 (lease ended)"));
  released = Ctl({"hold", "--model", "m", "--version", "v9", "--holder", "pod-9", "--release"},
                 &agent);
  EXPECT_THAT(released.out, HasSubstr("(no live lease)"));

  CtlResult bad = Ctl({"hold", "--model", "m", "--version", "v9"}, &agent);  // no holder anywhere
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  CtlResult unreachable = Ctl({"hold", "--model", "m", "--version", "v9", "--holder", "p"});
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.err;
  CtlResult refused = Ctl({"audit"});  // no token
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("unauthenticated"));
}

TEST_F(AgentLeasesTest, AgentStartingWhileTheCoordinatorIsDownKeepsTheLastPolicy) {
  AgentProcess& agent = *agents_[0];
  CtlResult disabled = Ctl({"disable-caching", "m", "--token", "adm"});
  ASSERT_EQ(disabled.exit_code, 0) << disabled.err;
  ASSERT_TRUE(agent.WaitForLogLine("caching policy from the coordinator: default enabled, 1 rules",
                                    kDeadline, 50ms))
      << agent.Log();

  // The coordinator goes away, then the agent restarts without it (a new log: this run's).
  coordinator_->Stop();
  agent.Stop();
  absl::Status restarted = agent.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_THAT(agent.Log(), HasSubstr("caching policy from the last run (until the coordinator "
                                    "answers): default enabled, 1 rules"));
  CtlResult refused = Fetch(agent, "v1");
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_THAT(refused.err, HasSubstr("caching disabled for model m@v1 by the coordinator"));
  EXPECT_FALSE(fs::exists(ModelDir("v1")));
  // Models the policy does not name still follow its default.
  CtlResult other = Ctl({"fetch", "--model", "other", "--version", "v1", "--source",
                         origin_->BaseUrl() + "/m/"}, &agent);
  EXPECT_EQ(other.exit_code, 0) << other.err << agent.Log();
}

}  // namespace
}  // namespace modelcache
