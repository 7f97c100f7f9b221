// The real modelcache-coordinator binary on 127.0.0.1, with simulated agents: the agent's own
// CoordinatorClient over a fake LocalCacheOps (an in-memory volume). Agents sharing a volume
// share one fake volume, as two nodes mounting one cache folder would.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <mutex>
#include <set>

#include "agent/coordination/coordinator_client.h"
#include "common/clock.h"
#include "modelcache/v1/coordinator.grpc.pb.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/fake_volume.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certificates.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;
using testing::PollUntil;

constexpr auto kDeadline = 20s;
const char kAdminToken[] = "admin-secret";
const char kMaintainerToken[] = "maintainer-secret";
const char kViewerToken[] = "viewer-secret";
const char kAgentToken[] = "agent-secret";

int64_t NowMs() { return ToUnixMillis(std::chrono::system_clock::now()); }

using testing::FakeVolume;

struct CoordinatorSettings {
  std::string storage_size = "1Gi";
  std::string check_every = "1s";
  std::string purge_after = "1w";
  std::string extra_coordinator_yaml;  // more "key: value" lines of the coordinator block
};

// The shared harness (tests/testing/coordinator_process.h) with this file's tokens and purge
// settings; restartable on the same port and database.
class TestCoordinator {
 public:
  explicit TestCoordinator(CoordinatorSettings settings) {
    testing::WriteTestFile(dir_.Path() / "tokens",
                           std::string(kAdminToken) + " admin alice\n" + kMaintainerToken +
                               " maintainer bob\n" + kViewerToken + " viewer carol\n" +
                               kAgentToken + " agent\n");
    options_.directory = dir_.Path();
    options_.tokens_file = dir_.Path() / "tokens";
    options_.default_caching.clear();  // the coordinator's default: disabled
    options_.storage_yaml = "{enabled: true, storageSize: " + settings.storage_size +
                            ", checkUnusedCachedModelsEvery: " + settings.check_every +
                            ", purgeUnusedCachedModelsAfter: " + settings.purge_after + "}";
    options_.coordinator_extra_yaml = settings.extra_coordinator_yaml;
  }

  // The first start, or a restart after Kill; then, without TLS (whose test waits with its
  // own credentials), until an RPC is answered: the callers' channels that failed while it
  // was down are past their reconnect backoff by then.
  void Start() {
    if (process_ == nullptr) {
      auto started = testing::CoordinatorProcess::Start(options_);
      ASSERT_TRUE(started.ok()) << started.status();
      process_ = *std::move(started);
    } else {
      absl::Status restarted = process_->Restart();
      ASSERT_TRUE(restarted.ok()) << restarted;
    }
    if (!options_.coordinator_extra_yaml.empty()) return;
    ASSERT_TRUE(PollUntil(
        [&] {
          // A fresh channel each time: a channel that failed once waits out its reconnect backoff.
          auto stub = Stub();
          grpc::ClientContext context;
          context.AddMetadata("authorization", std::string("Bearer ") + kViewerToken);
          context.set_deadline(std::chrono::system_clock::now() + 500ms);
          v1::NodesResponse response;
          return stub->Nodes(&context, v1::NodesRequest(), &response).ok();
        },
        kDeadline, 50ms))
        << "coordinator did not answer; log:\n" << Log();
  }
  void Kill() {
    ASSERT_TRUE(process_->Kill(SIGKILL).ok());
    ASSERT_TRUE(process_->WaitExit(10s).ok());
  }

  std::string Target() const { return process_->Address(); }
  std::unique_ptr<v1::Coordinator::Stub> Stub() const {
    return v1::Coordinator::NewStub(
        grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials()));
  }
  std::string Log() const { return process_->Log(); }

 private:
  testing::TempDir dir_;
  testing::CoordinatorProcessOptions options_;
  std::unique_ptr<testing::CoordinatorProcess> process_;
};

class SimulatedAgent {
 public:
  SimulatedAgent(const TestCoordinator& coordinator, std::string node, std::string volume_id,
                 FakeVolume& volume, std::string token = kAgentToken) {
    CoordinatorClientOptions options;
    options.target = coordinator.Target();
    options.token = std::move(token);
    options.node_name = std::move(node);
    options.volume_id = std::move(volume_id);
    options.agent_version = "test";
    options.report_interval = 200ms;
    options.min_backoff = 100ms;
    options.max_backoff = 500ms;
    client_ = std::make_unique<CoordinatorClient>(options, volume);
    client_->Start();
  }
  CoordinatorClient& Client() { return *client_; }

 private:
  std::unique_ptr<CoordinatorClient> client_;
};

// Admin calls with a role's token.
class Admin {
 public:
  Admin(const TestCoordinator& coordinator, std::string token)
      : stub_(coordinator.Stub()), token_(std::move(token)) {}

  template <typename Request, typename Response, typename Method>
  grpc::Status Call(Method method, const Request& request, Response* response) {
    grpc::ClientContext context;
    if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    return ((*stub_).*method)(&context, request, response);
  }

  v1::UsageResponse Usage() {
    v1::UsageResponse response;
    grpc::Status status = Call(&v1::Coordinator::Stub::Usage, v1::UsageRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  v1::NodesResponse Nodes() {
    v1::NodesResponse response;
    grpc::Status status = Call(&v1::Coordinator::Stub::Nodes, v1::NodesRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  grpc::Status SetCaching(const std::string& name, const std::string& version, bool enabled,
                          v1::ModelInfo* info = nullptr) {
    v1::SetCachingRequest request;
    request.set_name(name);
    request.set_version(version);
    request.set_enabled(enabled);
    v1::ModelInfo ignored;
    return Call(&v1::Coordinator::Stub::SetCaching, request, info ? info : &ignored);
  }
  grpc::Status Show(const std::string& name, v1::ModelInfo* info) {
    v1::ShowModelRequest request;
    request.set_name(name);
    return Call(&v1::Coordinator::Stub::ShowModel, request, info);
  }

 private:
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::string token_;
};

int ConnectedNodes(Admin& admin) {
  int connected = 0;
  v1::NodesResponse nodes = admin.Nodes();
  for (const v1::NodeInfo& node : nodes.nodes()) connected += node.connected() ? 1 : 0;
  return connected;
}

const v1::VolumeUsage* FindVolume(const v1::UsageResponse& usage, const std::string& id) {
  for (const v1::VolumeUsage& volume : usage.volumes()) {
    if (volume.volume_id() == id) return &volume;
  }
  return nullptr;
}

TEST(CoordinatorIntegration, UsageFromThreeAgentsShowsPerVolume) {
  TestCoordinator coordinator({});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  FakeVolume shared, own;
  shared.Put("llama", "1", 3000, NowMs());
  shared.Put("bert", "1", 1000, NowMs());
  own.Put("llama", "1", 3000, NowMs());
  SimulatedAgent a(coordinator, "node-a", "vol-shared", shared);
  SimulatedAgent b(coordinator, "node-b", "vol-shared", shared);
  SimulatedAgent c(coordinator, "node-c", "vol-own", own);
  Admin viewer(coordinator, kViewerToken);
  ASSERT_TRUE(PollUntil([&] { return ConnectedNodes(viewer) == 3; }, kDeadline));
  ASSERT_TRUE(PollUntil(
      [&] {
        v1::UsageResponse usage = viewer.Usage();
        const v1::VolumeUsage* s = FindVolume(usage, "vol-shared");
        const v1::VolumeUsage* o = FindVolume(usage, "vol-own");
        return s && o && s->used_bytes() == 4000 && s->model_count() == 2 &&
               s->nodes_size() == 2 && o->used_bytes() == 3000;
      },
      kDeadline))
      << viewer.Usage().DebugString();
  // A delta: a new model appears on the shared volume.
  shared.Put("t5", "2", 500, NowMs());
  EXPECT_TRUE(PollUntil(
      [&] {
        v1::UsageResponse usage = viewer.Usage();
        const v1::VolumeUsage* s = FindVolume(usage, "vol-shared");
        return s && s->used_bytes() == 4500;
      },
      kDeadline));
}

TEST(CoordinatorIntegration, CachingSettingInheritsAndReachesAgents) {
  TestCoordinator coordinator({});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  FakeVolume volume;
  SimulatedAgent agent(coordinator, "node-a", "vol-1", volume);
  Admin admin(coordinator, kAdminToken);
  ASSERT_TRUE(admin.SetCaching("llama", "", true).ok());
  ASSERT_TRUE(admin.SetCaching("llama", "2", false).ok());
  volume.Put("llama", "1", 10, NowMs());
  v1::ModelInfo info;
  ASSERT_TRUE(PollUntil(
      [&] { return admin.Show("llama", &info).ok() && info.versions_size() == 2; }, kDeadline));
  EXPECT_TRUE(info.caching_enabled());
  EXPECT_TRUE(info.versions(0).caching_enabled()) << "version 1 inherits the model's setting";
  EXPECT_FALSE(info.versions(1).caching_enabled()) << "version 2 is overridden";
  ASSERT_TRUE(PollUntil(
      [&] {
        auto policy = volume.Policy();
        return policy && policy->rules_size() == 2;
      },
      kDeadline));
  ASSERT_TRUE(admin.SetCaching("llama", "", false).ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto policy = volume.Policy();
        return policy && policy->rules_size() == 2 && policy->rules(0).name() == "llama" &&
               !policy->rules(0).enabled();
      },
      kDeadline));

  // Prefetch obeys the setting: refused while disabled, run by the agent once enabled.
  Admin maintainer(coordinator, kMaintainerToken);
  v1::PrefetchRequest prefetch;
  prefetch.set_name("llama");
  prefetch.set_version("3");
  prefetch.set_source("s3://bucket/llama/3");
  v1::PrefetchResponse response;
  EXPECT_EQ(maintainer.Call(&v1::Coordinator::Stub::Prefetch, prefetch, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(admin.SetCaching("llama", "", true).ok());
  ASSERT_TRUE(maintainer.Call(&v1::Coordinator::Stub::Prefetch, prefetch, &response).ok());
  ASSERT_EQ(response.command_ids_size(), 1);
  EXPECT_TRUE(PollUntil([&] { return volume.Has("llama", "3"); }, kDeadline));
  EXPECT_EQ(volume.Prefetches(), std::vector<std::string>{"llama@3 s3://bucket/llama/3"});
}

TEST(CoordinatorIntegration, UnusedModelIsPurgedAndLeasedOnesAreKept) {
  TestCoordinator coordinator({.check_every = "1s", .purge_after = "2s"});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  FakeVolume volume;
  const int64_t long_ago = NowMs() - 3'600'000;
  volume.Put("unused", "1", 100, long_ago);
  volume.Put("agent-leased", "1", 100, long_ago, /*leases=*/1);
  volume.Put("coordinator-leased", "1", 100, long_ago);
  Admin admin(coordinator, kAdminToken);
  v1::LeaseRequest lease;
  lease.set_name("coordinator-leased");
  lease.set_version("1");
  lease.set_holder("pod-7");
  lease.set_ttl_seconds(600);
  v1::Lease granted;
  ASSERT_TRUE(admin.Call(&v1::Coordinator::Stub::AcquireLease, lease, &granted).ok());
  SimulatedAgent agent(coordinator, "node-a", "vol-1", volume);

  ASSERT_TRUE(PollUntil([&] { return !volume.Has("unused", "1"); }, kDeadline))
      << coordinator.Log();
  // A model that goes unused later is purged by a later pass; the leased ones saw that pass too.
  volume.Put("later", "1", 100, NowMs());
  ASSERT_TRUE(PollUntil([&] { return !volume.Has("later", "1"); }, kDeadline));
  EXPECT_TRUE(volume.Has("agent-leased", "1"));
  EXPECT_TRUE(volume.Has("coordinator-leased", "1"));
  EXPECT_EQ(volume.Purges("coordinator-leased", "1"), 0);
  EXPECT_EQ(volume.Purges("unused", "1"), 1) << "purged exactly once";

  // The dry run explains the plan: nothing left but the leased ones, which it does not list.
  v1::PurgeResponse dry_run;
  ASSERT_TRUE(admin.Call(&v1::Coordinator::Stub::PurgeDryRun, v1::PurgeDryRunRequest(), &dry_run)
                  .ok());
  for (const v1::PurgeAction& action : dry_run.actions()) {
    EXPECT_NE(action.name(), "coordinator-leased");
    EXPECT_NE(action.name(), "agent-leased");
  }
  // Once the lease is released the model goes.
  v1::Lease released;
  ASSERT_TRUE(admin.Call(&v1::Coordinator::Stub::ReleaseLease, lease, &released).ok());
  EXPECT_TRUE(PollUntil([&] { return !volume.Has("coordinator-leased", "1"); }, kDeadline));
}

TEST(CoordinatorIntegration, DryRunListsWhatWouldGoAndWhy) {
  // A policy interval far longer than the test: only the dry run looks.
  TestCoordinator coordinator({.check_every = "1h", .purge_after = "1d"});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  FakeVolume volume;
  volume.Put("stale", "1", 100, NowMs() - 2 * 86'400'000LL);
  volume.Put("fresh", "1", 100, NowMs());
  SimulatedAgent agent(coordinator, "node-a", "vol-1", volume);
  Admin viewer(coordinator, kViewerToken);
  v1::PurgeResponse dry_run;
  ASSERT_TRUE(PollUntil(
      [&] {
        dry_run.Clear();
        return viewer.Call(&v1::Coordinator::Stub::PurgeDryRun, v1::PurgeDryRunRequest(), &dry_run)
                   .ok() &&
               dry_run.actions_size() == 1;
      },
      kDeadline));
  EXPECT_EQ(dry_run.actions(0).name(), "stale");
  EXPECT_EQ(dry_run.actions(0).reason(), "unused");
  EXPECT_NE(dry_run.actions(0).explanation().find("older than 1d"), std::string::npos);
  EXPECT_TRUE(volume.Has("stale", "1")) << "a dry run changes nothing";
}

TEST(CoordinatorIntegration, DeleteFromRegistryPurgesOnEveryVolume) {
  TestCoordinator coordinator({});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  FakeVolume shared, own;
  shared.Put("gone", "1", 100, NowMs());
  shared.Put("gone", "2", 100, NowMs());
  own.Put("gone", "2", 100, NowMs());
  own.Put("kept", "1", 100, NowMs());
  SimulatedAgent a(coordinator, "node-a", "vol-shared", shared);
  SimulatedAgent b(coordinator, "node-b", "vol-shared", shared);
  SimulatedAgent c(coordinator, "node-c", "vol-own", own);
  Admin admin(coordinator, kAdminToken);
  ASSERT_TRUE(PollUntil(
      [&] {
        v1::UsageResponse usage = admin.Usage();
        const v1::VolumeUsage* s = FindVolume(usage, "vol-shared");
        const v1::VolumeUsage* o = FindVolume(usage, "vol-own");
        return s && o && s->model_count() == 2 && o->model_count() == 2;
      },
      kDeadline));
  v1::DeleteModelRequest request;
  request.set_name("gone");
  v1::PurgeResponse response;
  ASSERT_TRUE(admin.Call(&v1::Coordinator::Stub::DeleteModel, request, &response).ok());
  EXPECT_EQ(response.actions_size(), 3);
  EXPECT_TRUE(PollUntil(
      [&] { return !shared.Has("gone", "1") && !shared.Has("gone", "2") && !own.Has("gone", "2"); },
      kDeadline));
  EXPECT_TRUE(own.Has("kept", "1"));
  // The shared volume was purged by one of its two agents, once.
  EXPECT_EQ(shared.Purges("gone", "1"), 1);
  v1::ModelInfo info;
  ASSERT_TRUE(admin.Show("gone", &info).ok());
  EXPECT_TRUE(info.deleted());
  EXPECT_FALSE(info.caching_enabled());
}

// What the README says of pins and deletes: a pin keeps a model from the unused and quota rules
// only; `delete` purges a pinned model at once. The pin stays recorded, and protects the model
// again once `enable-caching NAME` has brought it back.
TEST(CoordinatorIntegration, DeletePurgesAPinnedModelAndThePinProtectsItAgainOnceItIsBack) {
  TestCoordinator coordinator({.check_every = "1s", .purge_after = "2s"});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  FakeVolume volume;
  volume.Put("pinned", "1", 100, NowMs());
  Admin admin(coordinator, kAdminToken);
  v1::SetPinRequest pin;
  pin.set_name("pinned");
  pin.set_pinned(true);
  v1::ModelInfo info;
  ASSERT_TRUE(admin.Call(&v1::Coordinator::Stub::SetPin, pin, &info).ok());
  SimulatedAgent agent(coordinator, "node-a", "vol-1", volume);
  ASSERT_TRUE(PollUntil(
      [&] {
        v1::UsageResponse usage = admin.Usage();
        const v1::VolumeUsage* v = FindVolume(usage, "vol-1");
        return v && v->model_count() == 1;
      },
      kDeadline));

  v1::DeleteModelRequest request;
  request.set_name("pinned");
  v1::PurgeResponse response;
  ASSERT_TRUE(admin.Call(&v1::Coordinator::Stub::DeleteModel, request, &response).ok());
  ASSERT_EQ(response.actions_size(), 1);
  EXPECT_EQ(response.actions(0).reason(), "deleted");
  ASSERT_TRUE(PollUntil([&] { return !volume.Has("pinned", "1"); }, kDeadline)) << coordinator.Log();
  ASSERT_TRUE(admin.Show("pinned", &info).ok());
  EXPECT_TRUE(info.deleted());
  EXPECT_TRUE(info.pinned()) << "the delete does not drop the pin";

  ASSERT_TRUE(admin.SetCaching("pinned", "", true, &info).ok());
  EXPECT_FALSE(info.deleted()) << "enable-caching brings a deleted model back";
  EXPECT_TRUE(info.pinned());
  // Cached again and unused for longer than purgeUnusedCachedModelsAfter: the pin keeps it, an
  // unpinned model of the same age goes, and so does one put there after it (a later pass).
  const int64_t long_ago = NowMs() - 3'600'000;
  volume.Put("pinned", "1", 100, long_ago);
  volume.Put("unpinned", "1", 100, long_ago);
  ASSERT_TRUE(PollUntil([&] { return !volume.Has("unpinned", "1"); }, kDeadline)) << coordinator.Log();
  volume.Put("later", "1", 100, long_ago);
  ASSERT_TRUE(PollUntil([&] { return !volume.Has("later", "1"); }, kDeadline)) << coordinator.Log();
  EXPECT_TRUE(volume.Has("pinned", "1"));
  EXPECT_EQ(volume.Purges("pinned", "1"), 1) << "purged once, by the delete";
}

TEST(CoordinatorIntegration, QuotaEvictionPicksLeastRecentlyUsed) {
  // Quota 1000 bytes: purge above 900 down to 800.
  TestCoordinator coordinator({.storage_size = "1000", .check_every = "1s", .purge_after = "1w"});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  FakeVolume volume;
  const int64_t now = NowMs();
  volume.Put("newest", "1", 300, now - 1'000);
  volume.Put("oldest", "1", 300, now - 300'000);
  volume.Put("middle", "1", 300, now - 200'000);
  volume.Put("pinned-old", "1", 100, now - 900'000);
  Admin admin(coordinator, kAdminToken);
  v1::SetPinRequest pin;
  pin.set_name("pinned-old");
  pin.set_pinned(true);
  v1::ModelInfo pinned;
  ASSERT_TRUE(admin.Call(&v1::Coordinator::Stub::SetPin, pin, &pinned).ok());
  SimulatedAgent agent(coordinator, "node-a", "vol-1", volume);
  ASSERT_TRUE(PollUntil([&] { return !volume.Has("oldest", "1"); }, kDeadline));
  // 1000 - 300 = 700 <= 800: one eviction is enough; wait for the usage to show it.
  ASSERT_TRUE(PollUntil(
      [&] {
        v1::UsageResponse usage = admin.Usage();
        const v1::VolumeUsage* v = FindVolume(usage, "vol-1");
        return v && v->used_bytes() == 700;
      },
      kDeadline));
  EXPECT_TRUE(volume.Has("middle", "1"));
  EXPECT_TRUE(volume.Has("newest", "1"));
  EXPECT_TRUE(volume.Has("pinned-old", "1"));
}

TEST(CoordinatorIntegration, RestartKeepsStateAndNoCommandIsLostOrRunTwice) {
  TestCoordinator coordinator({});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  FakeVolume first, second;
  first.Put("m", "1", 100, NowMs());
  second.Put("m", "1", 100, NowMs());
  Admin admin(coordinator, kAdminToken);
  ASSERT_TRUE(admin.SetCaching("m", "", true).ok());
  auto a = std::make_unique<SimulatedAgent>(coordinator, "node-a", "vol-1", first);
  {
    SimulatedAgent b(coordinator, "node-b", "vol-2", second);
    ASSERT_TRUE(PollUntil([&] { return ConnectedNodes(admin) == 2; }, kDeadline));
    ASSERT_TRUE(PollUntil(
        [&] {
          v1::UsageResponse usage = admin.Usage();
          auto volume = FindVolume(usage, "vol-2");
          return volume && volume->used_bytes() == 100;
        },
        kDeadline));
  }  // node-b goes away
  ASSERT_TRUE(PollUntil([&] { return ConnectedNodes(admin) == 1; }, kDeadline));
  // A purge for vol-2 now has no live agent: it must wait, across a coordinator crash.
  v1::PurgeRequest purge;
  purge.set_name("m");
  purge.set_version("1");
  v1::PurgeResponse response;
  ASSERT_TRUE(admin.Call(&v1::Coordinator::Stub::Purge, purge, &response).ok());
  ASSERT_EQ(response.actions_size(), 2);
  ASSERT_TRUE(PollUntil([&] { return !first.Has("m", "1"); }, kDeadline));
  EXPECT_TRUE(second.Has("m", "1"));

  ASSERT_NO_FATAL_FAILURE(coordinator.Kill());
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  v1::ModelInfo info;
  ASSERT_TRUE(admin.Show("m", &info).ok());
  EXPECT_TRUE(info.caching_enabled()) << "the registry survived the restart";
  // node-a reconnects by itself.
  EXPECT_TRUE(PollUntil([&] { return a->Client().Connections() >= 2 && ConnectedNodes(admin) == 1; },
                        kDeadline));
  // node-b comes back and gets the purge that waited for it, once.
  SimulatedAgent b(coordinator, "node-b", "vol-2", second);
  EXPECT_TRUE(PollUntil([&] { return !second.Has("m", "1"); }, kDeadline)) << coordinator.Log();
  EXPECT_EQ(second.Purges("m", "1"), 1);
  EXPECT_EQ(first.Purges("m", "1"), 1);
}

TEST(CoordinatorIntegration, RolesAreEnforced) {
  TestCoordinator coordinator({});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  v1::UsageResponse usage;
  EXPECT_EQ(Admin(coordinator, "").Call(&v1::Coordinator::Stub::Usage, v1::UsageRequest(), &usage)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Admin(coordinator, "wrong").Call(&v1::Coordinator::Stub::Usage, v1::UsageRequest(),
                                              &usage)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Admin(coordinator, kAgentToken)
                .Call(&v1::Coordinator::Stub::Usage, v1::UsageRequest(), &usage)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Admin(coordinator, kViewerToken)
                  .Call(&v1::Coordinator::Stub::Usage, v1::UsageRequest(), &usage)
                  .ok());

  Admin viewer(coordinator, kViewerToken), maintainer(coordinator, kMaintainerToken),
      admin(coordinator, kAdminToken);
  EXPECT_EQ(viewer.SetCaching("m", "", true).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(maintainer.SetCaching("m", "", true).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(admin.SetCaching("m", "", true).ok());
  v1::DeleteModelRequest remove;
  remove.set_name("m");
  v1::PurgeResponse purged;
  EXPECT_EQ(maintainer.Call(&v1::Coordinator::Stub::DeleteModel, remove, &purged).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::PrefetchRequest prefetch;
  prefetch.set_name("m");
  prefetch.set_version("1");
  prefetch.set_source("file:///m");
  v1::PrefetchResponse prefetched;
  EXPECT_EQ(viewer.Call(&v1::Coordinator::Stub::Prefetch, prefetch, &prefetched).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A maintainer may prefetch; with no agent connected the answer says so.
  EXPECT_EQ(maintainer.Call(&v1::Coordinator::Stub::Prefetch, prefetch, &prefetched).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // An agent with an admin token, or none, is not let in; the right token is.
  FakeVolume volume;
  SimulatedAgent wrong(coordinator, "node-x", "vol-x", volume, kAdminToken);
  SimulatedAgent right(coordinator, "node-y", "vol-y", volume, kAgentToken);
  ASSERT_TRUE(PollUntil([&] { return right.Client().Connected(); }, kDeadline));
  EXPECT_FALSE(wrong.Client().Connected());
  EXPECT_EQ(wrong.Client().Connections(), 0u);
  // `right` may connect before `wrong` has made its first attempt: wait for the refusal.
  EXPECT_TRUE(PollUntil([&] { return coordinator.Log().find("auth refused call=Connect peer=") != std::string::npos; },
                        kDeadline))
      << "refused attempts are logged";
}

using testing::TestCertificates;  // a CA, a server and a client certificate, made by openssl

// The coordinator config lines that serve TLS with the server certificate and require client
// certificates signed by the test CA.
std::string MutualTlsYaml(const TestCertificates& certs) {
  return "tls: {cert: " + certs.Path("server.pem") + ", key: " + certs.Path("server.key") +
         ", clientCa: " + certs.Path("ca.pem") + "}";
}

TEST(CoordinatorIntegration, MutualTlsLetsInOnlyClientsWithCertificates) {
  TestCertificates certs;
  TestCoordinator coordinator({.extra_coordinator_yaml = MutualTlsYaml(certs)});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  auto call_usage = [&](std::shared_ptr<grpc::ChannelCredentials> credentials) {
    auto stub = v1::Coordinator::NewStub(grpc::CreateChannel(coordinator.Target(), credentials));
    grpc::ClientContext context;
    context.AddMetadata("authorization", std::string("Bearer ") + kViewerToken);
    context.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::UsageResponse response;
    return stub->Usage(&context, v1::UsageRequest(), &response);
  };
  grpc::SslCredentialsOptions with_client_cert;
  with_client_cert.pem_root_certs = certs.Read("ca.pem");
  with_client_cert.pem_cert_chain = certs.Read("client.pem");
  with_client_cert.pem_private_key = certs.Read("client.key");
  ASSERT_TRUE(PollUntil([&] { return call_usage(grpc::SslCredentials(with_client_cert)).ok(); },
                        kDeadline))
      << coordinator.Log();
  grpc::SslCredentialsOptions without_client_cert;
  without_client_cert.pem_root_certs = certs.Read("ca.pem");
  EXPECT_FALSE(call_usage(grpc::SslCredentials(without_client_cert)).ok());
  EXPECT_FALSE(call_usage(grpc::InsecureChannelCredentials()).ok());

  // The agent's client speaks TLS too.
  FakeVolume volume;
  CoordinatorClientOptions options;
  options.target = coordinator.Target();
  options.token = kAgentToken;
  options.node_name = "node-tls";
  options.volume_id = "vol-tls";
  options.tls = true;
  options.root_certs = certs.Read("ca.pem");
  options.client_cert = certs.Read("client.pem");
  options.client_key = certs.Read("client.key");
  options.report_interval = 200ms;
  CoordinatorClient client(options, volume);
  client.Start();
  EXPECT_TRUE(PollUntil([&] { return client.Connected(); }, kDeadline)) << coordinator.Log();
}

// The real agent binary reaches a coordinator that requires client certificates, through its
// coordinatorTls keys; with the CA alone (no client certificate) it is refused.
TEST(CoordinatorIntegration, AgentConnectsOverMutualTlsWithItsConfiguredCertificates) {
  TestCertificates certs;
  TestCoordinator coordinator({.extra_coordinator_yaml = MutualTlsYaml(certs)});
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  testing::TempDir dir;
  testing::WriteTestFile(dir.Path() / "token", std::string(kAgentToken) + "\n");
  auto start_agent = [&](const std::string& node, const std::string& tls_yaml) {
    return testing::AgentProcess::Start({.directory = dir.Path(),
                                         .node_name = node,
                                         .cache_root = dir.Path() / ("cache-" + node),
                                         .socket = dir.Path() / (node + ".sock"),
                                         .coordinator = coordinator.Target(),
                                         .coordinator_token_file = dir.Path() / "token",
                                         .extra_yaml = "coordinatorTls: " + tls_yaml + "\n"});
  };
  auto with_certificate = start_agent("node-mtls", "{caFile: " + certs.Path("ca.pem") +
                                                       ", certFile: " + certs.Path("client.pem") +
                                                       ", keyFile: " + certs.Path("client.key") + "}");
  ASSERT_TRUE(with_certificate.ok()) << with_certificate.status();
  EXPECT_TRUE((*with_certificate)->WaitForLogLine("coordinator connected", kDeadline))
      << (*with_certificate)->Log() << coordinator.Log();

  auto without_certificate = start_agent("node-ca-only", "{caFile: " + certs.Path("ca.pem") + "}");
  ASSERT_TRUE(without_certificate.ok()) << without_certificate.status();
  // A refused handshake is UNAVAILABLE, which the agent logs only after it once connected;
  // so: not connected within a window in which the agent with a certificate did connect.
  EXPECT_FALSE((*without_certificate)->WaitForLogLine("coordinator connected", 5s))
      << (*without_certificate)->Log();
}

}  // namespace
}  // namespace modelcache
