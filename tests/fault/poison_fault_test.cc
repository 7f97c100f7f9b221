// Fault cases (issue #17): a shared cache no tenant can poison. An attacker fills NAME@VERSION
// from a source of its own; a victim asks for the same name and version from its source. The
// victim must never receive the attacker's bytes, with one agent, two agents on one folder,
// joining the attacker's fill in progress or waiting on another agent's. The real agent binary
// and modelcachectl against an nginx origin on 127.0.0.1 that serves both sources. Every case
// asserts the three promises: FAILED_PRECONDITION naming the model and both sources, nothing
// partial under models/, every model on the volume untouched (the attacker's included).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/store/layout.h"
#include "common/sha256.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/source_access.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::AgentProcess;
using testing::CtlResult;
using testing::PollUntil;

constexpr auto kDeadline = 60s;

class FaultPoisoning : public ::testing::Test {
 protected:
  void SetUp() override {
    // The victim's model (what its registry names) and the attacker's: same file names and
    // sizes, other bytes.
    fs::path origin = dir_.Path() / "origin";
    good_files_ = testing::WriteRandomModel(origin / "good" / "llama",
                                            {{"config.json", 2345}, {"w.bin", 1 << 20}});
    for (const v1::ManifestFile& file : good_files_) {
      v1::ManifestFile& evil = evil_files_.emplace_back(file);
      evil.set_sha256(testing::WriteRandomFile(origin / "evil" / "llama" / file.path(),
                                               file.size(), 1000 + evil_files_.size()));
      ASSERT_NE(evil.sha256(), file.sha256());
    }
    other_files_ = testing::WriteRandomModel(origin / "other", {{"o.bin", 100'000}});
    ASSERT_TRUE(testing::WriteTestFile(origin / "good" / "llama" / "modelcache.json",
                                       testing::HttpListingJson(good_files_)));
    ASSERT_TRUE(testing::WriteTestFile(origin / "evil" / "llama" / "modelcache.json",
                                       testing::HttpListingJson(evil_files_)));
    ASSERT_TRUE(testing::WriteTestFile(origin / "other" / "modelcache.json",
                                       testing::HttpListingJson(other_files_)));
    // /slow/evil/llama/: the attacker's model at a crawl (about 8 s for its 1 MiB file), so a
    // victim can come while it fills.
    fs::create_directories(origin / "slow");
    fs::create_directory_symlink(origin / "evil", origin / "slow" / "evil");
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> nginx = testing::NginxServer::Start(
        {.root = origin.string(),
         .locations = {{.prefix = "/slow/", .extra_directives = "limit_rate 128k;"}}});
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    origin_ = *std::move(nginx);
  }

  void StartAgent(std::unique_ptr<AgentProcess>& agent, const std::string& node,
                  const fs::path& cache_root) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> started = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = node,
         .cache_root = cache_root,
         .socket = dir_.Path() / ("run-" + node) / "agent.sock",
         .coordinator = coordinator_ ? coordinator_->Address() : "",
         .network_allow = testing::LoopbackOrigins(),  // the origin listens on 127.0.0.1
         .extra_yaml = "fillLease: {ttl: 2s, pollInterval: 1s}\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    agent = *std::move(started);
  }

  std::string Good() const { return origin_->BaseUrl() + "/good/llama/"; }
  std::string Evil() const { return origin_->BaseUrl() + "/evil/llama/"; }
  std::string SlowEvil() const { return origin_->BaseUrl() + "/slow/evil/llama/"; }

  CtlResult Fetch(const AgentProcess& agent, const std::string& source,
                  std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"fetch", "--model", "llama", "--version", "v3", "--source",
                                     source};
    args.insert(args.end(), more.begin(), more.end());
    return testing::RunCtl({.directory = dir_.Path(), .socket = agent.Socket()}, args);
  }
  CtlResult FetchOther(const AgentProcess& agent) {
    return testing::RunCtl({.directory = dir_.Path(), .socket = agent.Socket()},
                           {"fetch", "--model", "other", "--version", "v1", "--source",
                            origin_->BaseUrl() + "/other/"});
  }

  // The victim is refused, told the model, its source and the other one, and given no path.
  static void ExpectRefusedNamingBoth(const CtlResult& victim, const std::string& theirs,
                                      const std::string& asked) {
    EXPECT_NE(victim.exit_code, 0) << victim.out;
    EXPECT_EQ(victim.out, "") << "no path may be printed";
    EXPECT_THAT(victim.err, HasSubstr("FAILED_PRECONDITION"));
    EXPECT_THAT(victim.err, HasSubstr("llama@v3"));
    EXPECT_THAT(victim.err, HasSubstr(theirs));
    EXPECT_THAT(victim.err, HasSubstr(asked));
    EXPECT_THAT(victim.err, Not(HasSubstr("ready (")));
  }

  // The files at `dir` are byte for byte `files`.
  static void ExpectFilesAt(const fs::path& dir, const std::vector<v1::ManifestFile>& files) {
    for (const v1::ManifestFile& file : files) {
      absl::StatusOr<std::string> digest = Sha256OfFile(dir / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << dir / file.path();
    }
  }

  // The victim's way out: `fetch --fallback` downloads its own source into its own folder.
  void ExpectFallbackGetsTheVictimsBytes(const AgentProcess& agent) {
    const fs::path dest = dir_.Path() / ("pod-disk-" + agent.NodeName());
    CtlResult local = Fetch(agent, Good(), {"--fallback", "--dest", dest.string()});
    ASSERT_EQ(local.exit_code, 0) << local.err;
    EXPECT_THAT(local.err, HasSubstr("the agent refused"));
    ExpectFilesAt(dest / "models" / "llama" / "v3", good_files_);
  }

  fs::path Shared() const { return dir_.Path() / "shared-cache"; }

  testing::TempDir dir_;
  std::vector<v1::ManifestFile> good_files_;
  std::vector<v1::ManifestFile> evil_files_;
  std::vector<v1::ManifestFile> other_files_;
  std::unique_ptr<testing::NginxServer> origin_;
  // After dir_, so stopped (by PID) before their folders go.
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agents_[2];
};

TEST_F(FaultPoisoning, OneAgentNeverServesTheAttackersFillToAVictimOfAnotherSource) {
  const fs::path root = dir_.Path() / "cache";
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a", root));
  const AgentProcess& agent = *agents_[0];
  ASSERT_EQ(FetchOther(agent).exit_code, 0) << agent.Log();
  CtlResult attacker = Fetch(agent, Evil());
  ASSERT_EQ(attacker.exit_code, 0) << attacker.err << agent.Log();
  const std::map<std::string, std::string> volume = testing::HashPublishedModels(root);

  CtlResult victim = Fetch(agent, Good());
  ExpectRefusedNamingBoth(victim, Evil(), Good());
  ASSERT_NO_FATAL_FAILURE(ExpectFallbackGetsTheVictimsBytes(agent));

  // Nothing changed on the volume: the attacker's model stays (for callers of its source),
  // the other model too, and nothing partial appeared.
  EXPECT_EQ(testing::HashPublishedModels(root), volume);
  EXPECT_EQ(testing::FindPartialModel(root), "");
  // The attacker's source, written another way, is still the same source: a hit.
  std::string evil_upper = Evil();
  evil_upper.replace(0, 4, "HTTP");
  CtlResult again = Fetch(agent, evil_upper);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("already cached"));
  // stat shows where the cached model came from, and what the origin said of each file.
  CtlResult stat = testing::RunCtl({.directory = dir_.Path(), .socket = agent.Socket()},
                                   {"stat", "--model", "llama", "--version", "v3"});
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_THAT(stat.out, HasSubstr("source:       " + Evil()));
  EXPECT_THAT(stat.out, HasSubstr("identity at the source:"));
  EXPECT_THAT(stat.out, HasSubstr(evil_files_[1].sha256()));
}

TEST_F(FaultPoisoning, TwoAgentsOnOneFolderNeverServeTheAttackersFillToAVictimOfAnotherSource) {
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a", Shared()));
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[1], "node-b", Shared()));
  ASSERT_EQ(FetchOther(*agents_[1]).exit_code, 0) << agents_[1]->Log();
  CtlResult attacker = Fetch(*agents_[0], Evil());
  ASSERT_EQ(attacker.exit_code, 0) << attacker.err << agents_[0]->Log();
  const std::map<std::string, std::string> volume = testing::HashPublishedModels(Shared());

  // node-b never saw the model: it finds it published on the volume, from the other source.
  CtlResult victim = Fetch(*agents_[1], Good());
  ExpectRefusedNamingBoth(victim, Evil(), Good());
  // Asked again (now from node-b's index), the same answer.
  ExpectRefusedNamingBoth(Fetch(*agents_[1], Good()), Evil(), Good());
  ASSERT_NO_FATAL_FAILURE(ExpectFallbackGetsTheVictimsBytes(*agents_[1]));

  EXPECT_EQ(testing::HashPublishedModels(Shared()), volume);
  EXPECT_EQ(testing::FindPartialModel(Shared()), "");
}

TEST_F(FaultPoisoning, AVictimJoiningTheAttackersFillInProgressIsToldSo) {
  const fs::path root = dir_.Path() / "cache";
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a", root));
  const AgentProcess& agent = *agents_[0];
  ASSERT_EQ(FetchOther(agent).exit_code, 0) << agent.Log();
  const std::map<std::string, std::string> others = testing::HashPublishedModels(root);
  std::future<CtlResult> attacker =
      std::async(std::launch::async, [&] { return Fetch(agent, SlowEvil()); });
  ASSERT_TRUE(PollUntil([&] { return fs::exists(CacheLayout(root).JournalPath("llama", "v3")); },
                        kDeadline, 20ms))
      << agent.Log();

  CtlResult victim = Fetch(agent, Good());
  EXPECT_THAT(victim.err, HasSubstr("is being filled by this agent"));
  ExpectRefusedNamingBoth(victim, SlowEvil(), Good());
  EXPECT_EQ(attacker.wait_for(0s), std::future_status::timeout)
      << "the refusal came only after the fill";

  // The attacker's fill goes on and ends as usual; the other model is untouched.
  CtlResult filled = attacker.get();
  ASSERT_EQ(filled.exit_code, 0) << filled.err << agent.Log();
  ExpectFilesAt(root / "models" / "llama" / "v3", evil_files_);
  EXPECT_EQ(testing::HashPublishedModels(root, "llama", "v3"), others);
  EXPECT_EQ(testing::FindPartialModel(root), "");
}

// With the coordinator (caching enabled for every model): the victim's agent waits on the
// coordinator's fill lease, and the lock file tells it the filler's source.
TEST_F(FaultPoisoning, AVictimOnAnotherAgentWaitingForTheAttackersFillIsToldSo) {
  absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
      testing::CoordinatorProcess::Start({.directory = dir_.Path()});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = *std::move(coordinator);
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a", Shared()));
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[1], "node-b", Shared()));
  ASSERT_EQ(FetchOther(*agents_[1]).exit_code, 0) << agents_[1]->Log();
  const std::map<std::string, std::string> others = testing::HashPublishedModels(Shared());
  std::future<CtlResult> attacker =
      std::async(std::launch::async, [&] { return Fetch(*agents_[0], SlowEvil()); });
  ASSERT_TRUE(PollUntil(
      [&] { return fs::exists(CacheLayout(Shared()).LocksDir() / "llama@v3.lock"); }, kDeadline,
      20ms))
      << agents_[0]->Log();

  CtlResult victim = Fetch(*agents_[1], Good());
  EXPECT_THAT(victim.err, HasSubstr("is being filled by the agent on node-a"));
  ExpectRefusedNamingBoth(victim, SlowEvil(), Good());
  EXPECT_EQ(attacker.wait_for(0s), std::future_status::timeout)
      << "the refusal came only after the fill";

  CtlResult filled = attacker.get();
  ASSERT_EQ(filled.exit_code, 0) << filled.err << agents_[0]->Log();
  ExpectFilesAt(Shared() / "models" / "llama" / "v3", evil_files_);
  EXPECT_EQ(testing::HashPublishedModels(Shared(), "llama", "v3"), others);
  EXPECT_EQ(testing::FindPartialModel(Shared()), "");
  // Once published, the victim's answer is the same.
  ExpectRefusedNamingBoth(Fetch(*agents_[1], Good()), SlowEvil(), Good());
}

}  // namespace
}  // namespace modelcache
