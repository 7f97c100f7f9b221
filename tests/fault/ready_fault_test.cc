// Fault cases (issue #11, 1): "ready" only for a model that is there. The real agent binary (one
// agent, or two on one shared cache folder with the real coordinator) and an nginx origin on
// 127.0.0.1; the model's published folder is purged by the other agent or removed outside the
// agent. Every case asserts the three promises: a clear answer (a fill again, never READY at a
// path that does not exist), nothing partial under models/, the other models untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/store/layout.h"
#include "agent/store/volume_id.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "modelcache/v1/coordinator.pb.h"
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

class FaultReadyHits : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path origin = dir_.Path() / "origin";
    model_files_ = testing::WriteRandomModel(origin / "m",
                                             {{"config.json", 2345}, {"weights/w.bin", 1 << 20}});
    other_files_ = testing::WriteRandomModel(origin / "other", {{"o.bin", 100'000}});
    ASSERT_TRUE(testing::WriteTestFile(origin / "m" / "modelcache.json",
                                       testing::HttpListingJson(model_files_)));
    ASSERT_TRUE(testing::WriteTestFile(origin / "other" / "modelcache.json",
                                       testing::HttpListingJson(other_files_)));
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> nginx =
        testing::NginxServer::Start({.root = origin.string()});
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    origin_ = *std::move(nginx);
  }

  void StartCoordinator() {
    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start({.directory = dir_.Path()});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  // An agent on `cache_root`, reporting every second to the coordinator when there is one.
  void StartAgent(std::unique_ptr<AgentProcess>& agent, const std::string& node,
                  const fs::path& cache_root) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> started = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = node,
         .cache_root = cache_root,
         .socket = dir_.Path() / ("run-" + node) / "agent.sock",
         .coordinator = coordinator_ ? coordinator_->Address() : "",
         .network_allow = testing::LoopbackOrigins(),  // the origin listens on 127.0.0.1
         .extra_yaml = "coordinatorReportInterval: 1s\n"
                       "fillLease: {ttl: 2s, pollInterval: 1s}\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    agent = *std::move(started);
  }

  CtlResult Ctl(const AgentProcess* agent, const std::vector<std::string>& args,
                const std::string& hostname = "") {
    return testing::RunCtl({.directory = dir_.Path(),
                            .socket = agent ? agent->Socket() : fs::path(),
                            .coordinator = coordinator_ ? coordinator_->Address() : "",
                            .hostname = hostname},
                           args);
  }
  CtlResult Fetch(const AgentProcess& agent, const std::string& name,
                  const std::string& hostname = "") {
    return Ctl(&agent,
               {"fetch", "--model", name, "--version", "v1", "--source",
                origin_->BaseUrl() + "/" + name + "/"},
               hostname);
  }

  // The model's files are at `dir`, byte for byte as the origin has them.
  static void ExpectModelAt(const fs::path& dir, const std::vector<v1::ManifestFile>& files) {
    for (const v1::ManifestFile& file : files) {
      absl::StatusOr<std::string> digest = Sha256OfFile(dir / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << dir / file.path();
    }
  }

  static std::string VolumeId(const fs::path& cache_root) {
    absl::StatusOr<VolumeIdRecord> record = ReadVolumeId(CacheLayout(cache_root));
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? record->id : "missing volume id";
  }

  // The last heartbeat the coordinator recorded for `node` (0: not known).
  int64_t LastHeartbeat(const std::string& node) {
    CtlResult nodes = Ctl(nullptr, {"nodes", "--json"});
    v1::NodesResponse response;
    if (nodes.exit_code != 0 ||
        !google::protobuf::util::JsonStringToMessage(nodes.out, &response).ok()) {
      return 0;
    }
    for (const v1::NodeInfo& info : response.nodes()) {
      if (info.node_name() == node) return info.last_heartbeat_unix_ms();
    }
    return 0;
  }

  fs::path Shared() const { return dir_.Path() / "shared-cache"; }

  testing::TempDir dir_;
  std::vector<v1::ManifestFile> model_files_;
  std::vector<v1::ManifestFile> other_files_;
  std::unique_ptr<testing::NginxServer> origin_;
  // Declared after dir_, so stopped (by PID) before their folders go.
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agents_[2];
};

// Two agents of one shared folder, both connected: the coordinator's purge runs on one of them;
// the other must not answer READY at the purged path, nor report the model, nor list it.
TEST_F(FaultReadyHits, APurgeByOneAgentOfASharedVolumeIsSeenByTheOther) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a", Shared()));
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[1], "node-b", Shared()));
  const fs::path model_dir = Shared() / "models" / "m" / "v1";
  for (const auto& agent : agents_) {
    CtlResult fetched = Fetch(*agent, "m");
    ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent->Log();
    EXPECT_THAT(fetched.out, HasSubstr(model_dir.string()));
  }
  for (const auto& agent : agents_) ASSERT_EQ(Fetch(*agent, "other").exit_code, 0);
  const std::map<std::string, std::string> others = testing::HashPublishedModels(Shared(), "m", "v1");
  ASSERT_FALSE(others.empty());

  // Wait until the coordinator knows the copy, then purge it.
  const std::string volume = VolumeId(Shared());
  CtlResult show;
  ASSERT_TRUE(PollUntil(
      [&] {
        show = Ctl(nullptr, {"models", "show", "m", "--json"});
        return show.out.find(volume) != std::string::npos;
      },
      kDeadline, 200ms))
      << show.out << show.err;
  CtlResult purge = Ctl(nullptr, {"purge", "m@v1"});
  ASSERT_EQ(purge.exit_code, 0) << purge.err;
  int executor = -1;
  ASSERT_TRUE(PollUntil(
      [&] {
        for (int i = 0; i < 2; ++i) {
          if (agents_[i]->Log().find("purge done") != std::string::npos) executor = i;
        }
        return executor >= 0;
      },
      kDeadline, 100ms))
      << purge.out << agents_[0]->Log() << agents_[1]->Log();
  ASSERT_TRUE(PollUntil([&] { return !fs::exists(model_dir); }, kDeadline, 50ms));
  const AgentProcess& other = *agents_[1 - executor];

  // The other agent's full report (sent when it reconnects to a restarted coordinator) lists
  // only what is on the volume: no ghost comes back into the coordinator's registry.
  coordinator_->Stop();
  ASSERT_TRUE(coordinator_->Restart().ok());
  const int64_t restarted_ms = ToUnixMillis(SystemClock().Now());
  ASSERT_TRUE(PollUntil([&] { return LastHeartbeat(other.NodeName()) > restarted_ms; },
                        kDeadline, 200ms))
      << other.Log();
  show = Ctl(nullptr, {"models", "show", "m", "--json"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, Not(HasSubstr(volume))) << "the purged copy is reported again";

  // Nor do its list and stat show it.
  CtlResult stat = Ctl(&other, {"stat", "--model", "m", "--version", "v1"});
  EXPECT_NE(stat.exit_code, 0) << stat.out;
  EXPECT_THAT(stat.err, HasSubstr("NOT_FOUND"));
  CtlResult list = Ctl(&other, {"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, Not(HasSubstr(origin_->BaseUrl() + "/m/"))) << list.out;
  EXPECT_THAT(list.out, HasSubstr(origin_->BaseUrl() + "/other/")) << list.out;

  // A fetch through it fills the model again, and the folder it names is there.
  CtlResult again = Fetch(other, "m");
  ASSERT_EQ(again.exit_code, 0) << again.err << other.Log();
  EXPECT_THAT(again.err, Not(HasSubstr("already cached")));
  EXPECT_THAT(again.out, HasSubstr(model_dir.string()));
  ExpectModelAt(model_dir, model_files_);
  EXPECT_EQ(testing::FindPartialModel(Shared()), "");
  EXPECT_EQ(testing::HashPublishedModels(Shared(), "m", "v1"), others);
}

TEST_F(FaultReadyHits, APublishedFolderRemovedOutsideTheAgentIsFilledAgain) {
  const fs::path root = dir_.Path() / "cache";
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a", root));
  const AgentProcess& agent = *agents_[0];
  ASSERT_EQ(Fetch(agent, "m").exit_code, 0) << agent.Log();
  ASSERT_EQ(Fetch(agent, "other").exit_code, 0) << agent.Log();
  const std::map<std::string, std::string> others = testing::HashPublishedModels(root, "m", "v1");
  const fs::path model_dir = root / "models" / "m" / "v1";
  fs::remove_all(model_dir);

  CtlResult list = Ctl(&agent, {"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, Not(HasSubstr(origin_->BaseUrl() + "/m/"))) << list.out;
  EXPECT_THAT(list.out, HasSubstr(origin_->BaseUrl() + "/other/")) << list.out;
  CtlResult stat = Ctl(&agent, {"stat", "--model", "m", "--version", "v1"});
  EXPECT_NE(stat.exit_code, 0) << stat.out;
  EXPECT_THAT(stat.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(stat.err, HasSubstr("m@v1"));

  CtlResult again = Fetch(agent, "m");
  ASSERT_EQ(again.exit_code, 0) << again.err << agent.Log();
  EXPECT_THAT(again.err, Not(HasSubstr("already cached")));
  ExpectModelAt(model_dir, model_files_);
  EXPECT_EQ(testing::FindPartialModel(root), "");
  EXPECT_EQ(testing::HashPublishedModels(root, "m", "v1"), others);
  // Now a hit again, answered from the folder that is there.
  CtlResult hit = Fetch(agent, "m");
  ASSERT_EQ(hit.exit_code, 0) << hit.err;
  EXPECT_THAT(hit.err, HasSubstr("already cached"));
}

// The whole cache root removed (say, a hostPath folder cleaned by hand) while the agent runs.
// Removing the published folder between a hit's check and its answer is the same case as
// above; this one also takes models/, staging/, locks/ and trash/ away.
TEST_F(FaultReadyHits, TheWholeCacheRootRemovedIsFilledAgain) {
  const fs::path root = dir_.Path() / "cache";
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a", root));
  const AgentProcess& agent = *agents_[0];
  ASSERT_EQ(Fetch(agent, "m").exit_code, 0) << agent.Log();
  ASSERT_EQ(Fetch(agent, "other").exit_code, 0) << agent.Log();
  fs::remove_all(root);

  CtlResult list = Ctl(&agent, {"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, Not(HasSubstr(origin_->BaseUrl()))) << list.out;
  for (const std::string name : {"m", "other"}) {
    CtlResult stat = Ctl(&agent, {"stat", "--model", name, "--version", "v1"});
    EXPECT_NE(stat.exit_code, 0) << stat.out;
    EXPECT_THAT(stat.err, HasSubstr("NOT_FOUND"));
  }

  CtlResult again = Fetch(agent, "m");
  ASSERT_EQ(again.exit_code, 0) << again.err << agent.Log();
  EXPECT_THAT(again.err, Not(HasSubstr("already cached")));
  const fs::path model_dir = root / "models" / "m" / "v1";
  EXPECT_THAT(again.out, HasSubstr(model_dir.string()));
  ExpectModelAt(model_dir, model_files_);
  EXPECT_EQ(testing::FindPartialModel(root), "");
  // Nothing else came back by itself.
  EXPECT_FALSE(fs::exists(root / "models" / "other"));
}

// A pod on node-b holds the model; the admin's purge must keep it, whichever agent of the
// volume the coordinator would have asked.
TEST_F(FaultReadyHits, APurgeWhileAnotherAgentOfTheVolumeHoldsALeaseKeepsTheModel) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a", Shared()));
  ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[1], "node-b", Shared()));
  const fs::path model_dir = Shared() / "models" / "m" / "v1";
  ASSERT_EQ(Fetch(*agents_[0], "m").exit_code, 0) << agents_[0]->Log();
  CtlResult leased = Fetch(*agents_[1], "m", /*hostname=*/"pod-on-b");
  ASSERT_EQ(leased.exit_code, 0) << leased.err << agents_[1]->Log();
  const std::map<std::string, std::string> before = testing::HashModel(Shared(), "m", "v1");
  ASSERT_FALSE(before.empty());

  // The coordinator learns of the lease from node-b's report.
  CtlResult show;
  ASSERT_TRUE(PollUntil(
      [&] {
        show = Ctl(nullptr, {"models", "show", "m", "--json"});
        return show.out.find("\"live_leases\": 1") != std::string::npos;
      },
      kDeadline, 200ms))
      << show.out << show.err;
  CtlResult purge = Ctl(nullptr, {"purge", "m@v1"});
  ASSERT_EQ(purge.exit_code, 0) << purge.err;
  EXPECT_THAT(purge.out, HasSubstr("in use: live lease")) << purge.out;
  EXPECT_THAT(purge.out, HasSubstr("nothing cached to purge")) << purge.out;

  // Both agents report twice more (every second): no purge ran anywhere.
  const int64_t asked_ms = ToUnixMillis(SystemClock().Now());
  ASSERT_TRUE(PollUntil(
      [&] {
        return LastHeartbeat("node-a") > asked_ms + 1000 && LastHeartbeat("node-b") > asked_ms + 1000;
      },
      kDeadline, 200ms));
  for (const auto& agent : agents_) {
    EXPECT_THAT(agent->Log(), Not(HasSubstr("purge done"))) << agent->NodeName();
  }
  EXPECT_EQ(testing::HashModel(Shared(), "m", "v1"), before);
  EXPECT_EQ(testing::FindPartialModel(Shared()), "");
  CtlResult hit = Fetch(*agents_[0], "m");
  ASSERT_EQ(hit.exit_code, 0) << hit.err;
  EXPECT_THAT(hit.err, HasSubstr("already cached"));
}

}  // namespace
}  // namespace modelcache
