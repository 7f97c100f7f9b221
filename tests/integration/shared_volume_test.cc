// One cache volume, two nodes (issue 15): the real coordinator (quota 1Mi, its scheduled
// policy pass only every hour) and two real agents on one cache folder, with an nginx origin,
// all on 127.0.0.1.
//  - A pod's lease on node B keeps the model from `cleanup` through node A (A asks the
//    coordinator for the volume's leases); `--force` removes it. When the coordinator cannot
//    be asked, cleanup without --force refuses and removes nothing.
//  - The quota rule runs on the usage report that takes the volume over its high watermark,
//    not an hour later at the next scheduled pass.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "tests/testing/agent_process.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/registry_sources.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::AgentProcess;
using testing::CtlResult;
using testing::PollUntil;

constexpr auto kDeadline = 30s;
const std::vector<std::string> kVersions = {"v1", "v2", "v3"};

class SharedVolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path www = dir_.Path() / "www";
    for (const std::string& version : kVersions) {
      // 400 KiB each: two fit under the 1Mi quota's high watermark (90%), three do not.
      std::vector<v1::ManifestFile> files =
          testing::WriteRandomModel(www / "m" / version, {{"weights.bin", 400u << 10}});
      ASSERT_TRUE(testing::WriteTestFile(www / "m" / version / "modelcache.json",
                                         testing::HttpListingJson(files)));
    }
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
        testing::NginxServer::Start({.root = www.string()});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);

    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start(
            {.directory = dir_.Path(),
             .storage_yaml = "{storageSize: 1Mi, checkUnusedCachedModelsEvery: 1h, "
                             "purgeUnusedCachedModelsAfter: 7d}"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a"));
    ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[1], "node-b"));
    for (const std::string& version : kVersions) {
      CtlResult registered = Admin({"models", "set-source", "m@" + version, Url(version)});
      ASSERT_EQ(registered.exit_code, 0) << registered.err;
    }
    for (const std::unique_ptr<AgentProcess>& agent : agents_) {
      ASSERT_TRUE(testing::WaitForRegisteredSources(agent->LogPath(), 3, kDeadline))
          << agent->Log();
    }
  }

  void StartAgent(std::unique_ptr<AgentProcess>& agent, const std::string& node) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> started = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = node,
         .cache_root = CacheRoot(),
         .socket = dir_.Path() / ("run-" + node) / "agent.sock",
         .coordinator = coordinator_->Address(),
         .network_allow = testing::LoopbackOrigins()});
    ASSERT_TRUE(started.ok()) << started.status();
    agent = *std::move(started);
  }

  fs::path CacheRoot() const { return dir_.Path() / "cache"; }
  fs::path ModelDir(const std::string& version) const {
    return CacheRoot() / "models" / "m" / version;
  }
  std::string Url(const std::string& version) const {
    return origin_->BaseUrl() + "/m/" + version + "/";
  }

  CtlResult Admin(const std::vector<std::string>& args) {
    return testing::RunCtl({.directory = dir_.Path(), .coordinator = coordinator_->Address()},
                           args);
  }
  // Through `agent`; `holder` non-empty: the fetch takes a lease for that pod.
  CtlResult Ctl(const AgentProcess& agent, const std::vector<std::string>& args,
                const std::string& holder = "") {
    return testing::RunCtl({.directory = dir_.Path(), .socket = agent.Socket(), .hostname = holder},
                           args);
  }
  CtlResult Fetch(const AgentProcess& agent, const std::string& version,
                  const std::string& holder = "") {
    return Ctl(agent, {"fetch", "--model", "m", "--version", version, "--source", Url(version)},
               holder);
  }

  std::string VolumeId(const AgentProcess& agent) {
    CtlResult volumes = Ctl(agent, {"volumes", "--json"});
    std::smatch match;
    static const std::regex kId("\"volume_?[iI]d\": \"([0-9a-f]+)\"");
    EXPECT_TRUE(std::regex_search(volumes.out, match, kId)) << volumes.out << volumes.err;
    return match.size() > 1 ? match[1].str() : std::string();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::NginxServer> origin_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agents_[2];
};

TEST_F(SharedVolumeTest, CleanupThroughOneAgentKeepsAModelLeasedOnAnotherNodeUnlessForced) {
  AgentProcess& node_a = *agents_[0];
  AgentProcess& node_b = *agents_[1];
  CtlResult fetched = Fetch(node_b, "v1", "pod-on-b");
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  // The coordinator has B's report of the lease.
  std::string shown;
  ASSERT_TRUE(PollUntil(
      [&] {
        shown = Admin({"models", "show", "m", "--json"}).out;
        return shown.find("\"liveLeases\": 1") != std::string::npos ||
               shown.find("\"live_leases\": 1") != std::string::npos;
      },
      kDeadline, 100ms))
      << shown;
  const std::string volume = VolumeId(node_a);
  ASSERT_FALSE(volume.empty());

  CtlResult kept = Ctl(node_a, {"cleanup", "--volume", volume, "--models", "m@v1"});
  EXPECT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_THAT(kept.out, HasSubstr("live lease"));
  EXPECT_TRUE(fs::exists(ModelDir("v1"))) << kept.out;
  CtlResult still = Fetch(node_b, "v1");
  EXPECT_EQ(still.exit_code, 0) << still.err;

  CtlResult forced = Ctl(node_a, {"cleanup", "--volume", volume, "--models", "m@v1", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_FALSE(fs::exists(ModelDir("v1"))) << forced.out;
}

TEST_F(SharedVolumeTest, CleanupRefusesWithoutForceWhenTheCoordinatorCannotBeAsked) {
  AgentProcess& node_a = *agents_[0];
  CtlResult fetched = Fetch(node_a, "v1");
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  const std::string volume = VolumeId(node_a);
  ASSERT_FALSE(volume.empty());
  coordinator_->Stop();

  CtlResult refused = Ctl(node_a, {"cleanup", "--volume", volume, "--models", "m@v1"});
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_THAT(refused.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(refused.err, HasSubstr("cannot ask the coordinator"));
  EXPECT_THAT(refused.err, HasSubstr("--force"));
  EXPECT_TRUE(fs::exists(ModelDir("v1")));

  CtlResult forced = Ctl(node_a, {"cleanup", "--volume", volume, "--models", "m@v1", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_FALSE(fs::exists(ModelDir("v1")));
}

TEST_F(SharedVolumeTest, AReportOverTheHighWatermarkRunsTheQuotaRuleAtOnce) {
  // v1 is the least recently used; v1 + v2 (800 KiB) stay under 90% of 1 MiB.
  for (const std::string& version : {"v1", "v2"}) {
    CtlResult fetched = Fetch(*agents_[0], version);
    ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  }
  CtlResult third = Fetch(*agents_[1], "v3");
  ASSERT_EQ(third.exit_code, 0) << third.err;
  // The scheduled pass is an hour away: only the crossing report can run the quota rule.
  std::string audit;
  ASSERT_TRUE(PollUntil(
      [&] {
        audit = Admin({"audit", "--kind", "purge", "--json"}).out;
        return audit.find("quota") != std::string::npos;
      },
      kDeadline, 200ms))
      << audit << coordinator_->Log();
  EXPECT_THAT(audit, HasSubstr("\"v1\""));
  EXPECT_TRUE(PollUntil([&] { return !fs::exists(ModelDir("v1")); }, kDeadline, 50ms));
  EXPECT_TRUE(fs::exists(ModelDir("v2")));
  EXPECT_TRUE(fs::exists(ModelDir("v3")));
  EXPECT_THAT(coordinator_->Log(), HasSubstr("volume over its high watermark"));
}

}  // namespace
}  // namespace modelcache
