// The real coordinator and two real agents (each on its own cache volume) with an nginx origin,
// all on 127.0.0.1: the coordinator's caching policy gates the agents' Ensure, the agents
// report what they cached, and a purge from modelcachectl empties their cache folders.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include <google/protobuf/util/json_util.h>

#include "agent/store/layout.h"
#include "agent/store/volume_id.h"
#include "common/sha256.h"
#include "modelcache/v1/coordinator.pb.h"
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
using testing::AgentProcess;
using testing::PollUntil;
using testing::Subprocess;
using testing::SubprocessOptions;

const std::string kCtlBinary = MODELCACHE_BINARY_DIR "/cli/modelcachectl";
constexpr auto kDeadline = 30s;

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class AgentCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The origin: one small model with its listing.
    fs::path origin_root = dir_.Path() / "origin";
    files_ = testing::WriteRandomModel(origin_root / "m",
                                       {{"config.json", 4321}, {"weights/w.bin", 1u << 20}});
    for (const v1::ManifestFile& file : files_) model_bytes_ += file.size();
    ASSERT_TRUE(testing::WriteTestFile(origin_root / "m" / "modelcache.json",
                                       testing::HttpListingJson(files_)));
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
        testing::NginxServer::Start({.root = origin_root.string()});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);

    // The coordinator, caching disabled by default.
    testing::WriteTestFile(dir_.Path() / "tokens", "adm admin\nview viewer\nagt agent\n");
    testing::WriteTestFile(dir_.Path() / "agent-token", "agt\n");
    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start(
            {.directory = dir_.Path(),
             .storage_yaml = "{storageSize: 1Gi, checkUnusedCachedModelsEvery: 1h, "
                             "purgeUnusedCachedModelsAfter: 1d}",
             .tokens_file = dir_.Path() / "tokens",
             .default_caching = "disabled"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);

    ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[0], "node-a"));
    ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[1], "node-b"));
  }

  // Starts an agent on its own volume and waits until it serves and holds the coordinator's
  // first caching policy.
  void StartAgent(std::unique_ptr<AgentProcess>& agent, const std::string& node) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> started = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = node,
         .cache_root = dir_.Path() / ("cache-" + node),
         .socket = dir_.Path() / ("run-" + node) / "agent.sock",
         .coordinator = Address(),
         .coordinator_token_file = dir_.Path() / "agent-token",
         .network_allow = testing::LoopbackOrigins()});  // the origins listen on 127.0.0.1
    ASSERT_TRUE(started.ok()) << started.status();
    agent = *std::move(started);
    ASSERT_TRUE(WaitForPolicy(*agent, "default disabled, 0 rules")) << agent->Log();
  }

  v1::UsageResponse Usage() {
    CtlResult usage = Ctl({"usage", "--json", "--token", "view"});
    EXPECT_EQ(usage.exit_code, 0) << usage.err;
    v1::UsageResponse response;
    auto parsed = google::protobuf::util::JsonStringToMessage(usage.out, &response);
    EXPECT_TRUE(parsed.ok()) << parsed.ToString() << "\n" << usage.out;
    return response;
  }

  static const v1::VolumeUsage* FindVolume(const v1::UsageResponse& usage,
                                           const std::string& volume_id) {
    for (const v1::VolumeUsage& volume : usage.volumes()) {
      if (volume.volume_id() == volume_id) return &volume;
    }
    return nullptr;
  }

  // True once the agent logged that it applied a caching policy whose summary starts with
  // `summary` ("" for any policy).
  static bool WaitForPolicy(const AgentProcess& agent, const std::string& summary) {
    return agent.WaitForLogLine("caching policy from the coordinator: " + summary, kDeadline, 50ms);
  }

  std::string Address() const { return coordinator_->Address(); }
  std::string Url() const { return origin_->BaseUrl() + "/m/"; }

  static std::string VolumeId(const AgentProcess& agent) {
    absl::StatusOr<VolumeIdRecord> record = ReadVolumeId(CacheLayout(agent.CacheRoot()));
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? record->id : "missing volume id";
  }

  CtlResult Ctl(std::vector<std::string> args, const AgentProcess* agent = nullptr) {
    std::string tag = std::to_string(++ctl_runs_);
    SubprocessOptions options;
    options.argv = {kCtlBinary};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    // HOSTNAME empty: fetch names no holder, so no lease keeps a model from the purges here.
    options.environment = {"MODELCACHE_DISABLE=", "AIOLI_DISABLE_MODEL_CACHE=", "HOSTNAME=",
                           "MODELCACHE_TOKEN=", "MODELCACHE_COORDINATOR=" + Address(),
                           "MODELCACHE_SOCKET=" +
                               (agent ? agent->Socket().string() : dir_.Join("no-agent.sock"))};
    options.stdout_path = dir_.Join("ctl-" + tag + ".out");
    options.stderr_path = dir_.Join("ctl-" + tag + ".err");
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

  CtlResult Fetch(const AgentProcess& agent, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"fetch", "--model", "m", "--version", "v1", "--source", Url()};
    args.insert(args.end(), more.begin(), more.end());
    return Ctl(std::move(args), &agent);
  }

  // Every origin file is under `dir` with the origin's digest.
  void ExpectModelAt(const fs::path& dir) {
    for (const v1::ManifestFile& file : files_) {
      absl::StatusOr<std::string> digest = Sha256OfFile(dir / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << dir / file.path();
    }
  }

  // Enables caching for "m" (the policy's one rule) and waits until both agents applied it.
  void EnableCaching() {
    CtlResult enabled = Ctl({"enable-caching", "m", "--token", "adm"});
    ASSERT_EQ(enabled.exit_code, 0) << enabled.err;
    for (const std::unique_ptr<AgentProcess>& agent : agents_) {
      ASSERT_TRUE(WaitForPolicy(*agent, "default disabled, 1 rules")) << agent->Log();
    }
  }

  testing::TempDir dir_;
  std::vector<v1::ManifestFile> files_;
  uint64_t model_bytes_ = 0;
  std::unique_ptr<testing::NginxServer> origin_;
  // Declared after dir_, so stopped (by PID) before their folders go.
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agents_[2];
  int ctl_runs_ = 0;
};

TEST_F(AgentCoordinatorTest, DisabledCachingRefusesEnsureUntilTheAdminEnablesIt) {
  const AgentProcess& agent = *agents_[0];
  CtlResult refused = Fetch(agent);
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_THAT(refused.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(refused.err, HasSubstr("caching disabled for model m@v1 by the coordinator"));
  EXPECT_FALSE(fs::exists(agent.CacheRoot() / "models" / "m"));

  // The client falls back to downloading the model itself.
  fs::path dest = dir_.Path() / "dest";
  CtlResult local = Fetch(agent, {"--fallback", "--dest", dest.string()});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.err, HasSubstr("the agent refused (caching disabled for model m@v1"));
  ExpectModelAt(dest / "models" / "m" / "v1");
  EXPECT_FALSE(fs::exists(agent.CacheRoot() / "models" / "m"));

  ASSERT_NO_FATAL_FAILURE(EnableCaching());
  CtlResult cached = Fetch(agent);
  ASSERT_EQ(cached.exit_code, 0) << cached.err << agent.Log();
  fs::path ready = agent.CacheRoot() / "models" / "m" / "v1";
  EXPECT_THAT(cached.out, HasSubstr(ready.string()));
  ExpectModelAt(ready);
}

TEST_F(AgentCoordinatorTest, CachedModelsAreReportedThenPurgedFromEveryAgent) {
  ASSERT_NO_FATAL_FAILURE(EnableCaching());
  for (const std::unique_ptr<AgentProcess>& each : agents_) {
    const AgentProcess& agent = *each;
    CtlResult fetched = Fetch(agent);
    ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent.Log();
    ExpectModelAt(agent.CacheRoot() / "models" / "m" / "v1");
  }
  const std::string volume_a = VolumeId(*agents_[0]);
  const std::string volume_b = VolumeId(*agents_[1]);
  ASSERT_NE(volume_a, volume_b);
  const std::string used = "\"used_bytes\": \"" + std::to_string(model_bytes_) + "\"";

  // Both copies reach the coordinator's registry and usage.
  CtlResult show;
  ASSERT_TRUE(PollUntil(
      [&] {
        show = Ctl({"models", "show", "m", "--json", "--token", "view"});
        return show.out.find(volume_a) != std::string::npos &&
               show.out.find(volume_b) != std::string::npos;
      },
      kDeadline, 200ms))
      << show.out << show.err;
  EXPECT_THAT(show.out, HasSubstr("\"size_bytes\": \"" + std::to_string(model_bytes_) + "\""));
  CtlResult usage = Ctl({"usage", "--json", "--token", "view"});
  ASSERT_EQ(usage.exit_code, 0) << usage.err;
  EXPECT_EQ(Count(usage.out, used), 2u) << usage.out;
  EXPECT_THAT(usage.out, HasSubstr("node-a"));
  EXPECT_THAT(usage.out, HasSubstr("node-b"));

  CtlResult purge = Ctl({"purge", "m@v1", "--json", "--token", "adm"});
  ASSERT_EQ(purge.exit_code, 0) << purge.err;
  std::vector<std::string> command_ids;
  std::regex command_id("\"command_id\": \"([^\"]+)\"");
  for (auto match = std::sregex_iterator(purge.out.begin(), purge.out.end(), command_id);
       match != std::sregex_iterator(); ++match) {
    command_ids.push_back((*match)[1]);
  }
  ASSERT_EQ(command_ids.size(), 2u) << purge.out;

  // Each agent moves its copy to trash and empties it.
  for (const std::unique_ptr<AgentProcess>& each : agents_) {
    const AgentProcess& agent = *each;
    fs::path model_dir = agent.CacheRoot() / "models" / "m" / "v1";
    EXPECT_TRUE(PollUntil([&] { return !fs::exists(model_dir); }, kDeadline, 50ms))
        << model_dir << "\n" << agent.Log();
    EXPECT_TRUE(PollUntil([&] { return fs::is_empty(agent.CacheRoot() / "trash"); }, kDeadline, 50ms));
    // ... and its index forgot it.
    CtlResult stat = Ctl({"stat", "--model", "m", "--version", "v1"}, &agent);
    EXPECT_NE(stat.exit_code, 0) << stat.out;
    EXPECT_THAT(stat.err, HasSubstr("NOT_FOUND"));
  }

  // The coordinator recorded both answers with the bytes freed, and forgot the copies.
  std::string coordinator_log;
  EXPECT_TRUE(PollUntil(
      [&] {
        coordinator_log = coordinator_->Log();
        for (const std::string& id : command_ids) {
          if (coordinator_log.find("command=" + id + " bytes_freed=" +
                                   std::to_string(model_bytes_)) == std::string::npos) {
            return false;
          }
        }
        return true;
      },
      kDeadline, 100ms))
      << coordinator_log;
  EXPECT_TRUE(PollUntil(
      [&] {
        show = Ctl({"models", "show", "m", "--json", "--token", "view"});
        usage = Ctl({"usage", "--json", "--token", "view"});
        return show.exit_code == 0 && show.out.find(volume_a) == std::string::npos &&
               show.out.find(volume_b) == std::string::npos &&
               Count(usage.out, "\"used_bytes\": \"0\"") == 2;
      },
      kDeadline, 200ms))
      << show.out << usage.out;
}

// Switch storage: the agent comes back on a new empty volume with the old one as an extra
// volume. The old volume keeps showing in `usage` (its model, its bytes, the node mounting it),
// the coordinator plans no purge there, and a cleanup through the agent shows at once.
TEST_F(AgentCoordinatorTest, AfterASwitchTheOldVolumeShowsInUsageUntilItIsCleaned) {
  ASSERT_NO_FATAL_FAILURE(EnableCaching());
  AgentProcess& agent = *agents_[0];
  CtlResult fetched = Fetch(agent);
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent.Log();
  const fs::path old_root = agent.CacheRoot();
  const std::string old_volume = VolumeId(agent);
  ASSERT_TRUE(PollUntil(
      [&] {
        const v1::VolumeUsage* volume = FindVolume(Usage(), old_volume);
        return volume != nullptr && volume->model_count() == 1;
      },
      kDeadline, 200ms));

  // Restarted on volume B, with A as its extra volume; a long report interval, so that only
  // the cleanup's own report can show the cleanup within the deadline below.
  agent.Stop();
  testing::AgentProcessOptions switched = agent.Options();
  switched.cache_root = dir_.Path() / "cache-node-a-v2";
  switched.extra_yaml =
      "coordinatorReportInterval: 1h\nextraVolumes: [" + old_root.string() + "]\n";
  absl::Status restarted = agent.Restart(switched);
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(WaitForPolicy(agent, "default disabled, 1 rules")) << agent.Log();
  const std::string new_volume = VolumeId(agent);
  ASSERT_NE(new_volume, old_volume);

  v1::UsageResponse usage;
  ASSERT_TRUE(PollUntil(
      [&] {
        usage = Usage();
        const v1::VolumeUsage* now = FindVolume(usage, new_volume);
        const v1::VolumeUsage* old = FindVolume(usage, old_volume);
        return now != nullptr && now->nodes_size() == 1 && old != nullptr &&
               old->extra_nodes_size() == 1;
      },
      kDeadline, 200ms))
      << usage.DebugString();
  const v1::VolumeUsage* old = FindVolume(usage, old_volume);
  EXPECT_EQ(old->model_count(), 1u) << usage.DebugString();
  EXPECT_EQ(old->used_bytes(), model_bytes_);
  EXPECT_EQ(old->nodes_size(), 0) << "no agent serves the old volume";
  EXPECT_EQ(old->extra_nodes(0), "node-a");
  EXPECT_EQ(FindVolume(usage, new_volume)->nodes(0), "node-a");
  EXPECT_EQ(FindVolume(usage, new_volume)->model_count(), 0u);
  CtlResult table = Ctl({"usage", "--token", "view"});
  EXPECT_THAT(table.out, HasSubstr("node-a(extra)"));

  // No agent would run a purge command for the old volume: it is skipped, not queued.
  CtlResult purge = Ctl({"purge", "m@v1", "--json", "--token", "adm"});
  ASSERT_EQ(purge.exit_code, 0) << purge.err;
  v1::PurgeResponse purged;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(purge.out, &purged).ok()) << purge.out;
  EXPECT_EQ(purged.actions_size(), 0) << purge.out;
  ASSERT_EQ(purged.skipped_size(), 1) << purge.out;
  EXPECT_EQ(purged.skipped(0).volume_id(), old_volume);
  EXPECT_THAT(purged.skipped(0).explanation(), HasSubstr("modelcachectl cleanup"));

  CtlResult cleanup = Ctl({"cleanup", "--volume", old_volume, "--all-models"}, &agent);
  ASSERT_EQ(cleanup.exit_code, 0) << cleanup.out << cleanup.err << agent.Log();
  EXPECT_FALSE(fs::exists(old_root / "models" / "m" / "v1"));
  EXPECT_TRUE(PollUntil(
      [&] {
        usage = Usage();
        const v1::VolumeUsage* volume = FindVolume(usage, old_volume);
        return volume != nullptr && volume->model_count() == 0 && volume->used_bytes() == 0 &&
               volume->extra_nodes_size() == 1;
      },
      10s, 200ms))
      << usage.DebugString() << agent.Log();
}

}  // namespace
}  // namespace modelcache
