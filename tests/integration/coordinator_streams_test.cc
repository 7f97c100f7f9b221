// Many agent streams on one real coordinator process: more streams than its gRPC thread limit
// (the old synchronous Connect held a thread per stream and refused the rest), each of which
// must get its answers: the caching policy after the hello, its usage stored, a command with
// an id whose result the coordinator records, and a recorded disconnect.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <deque>
#include <mutex>
#include <optional>
#include <set>

#include "modelcache/v1/coordinator.grpc.pb.h"
#include "tests/testing/ports.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;
using testing::PollUntil;

constexpr int kStreams = 600;
constexpr int kModels = 5;
constexpr int kChannels = 4;
constexpr int kAdminThreads = 64;  // far fewer than the streams: they must not need threads
constexpr auto kDeadline = 20s;

// A simulated agent on the callback API, so the test drives hundreds of streams with a few
// threads: hello and a full report, then it answers every command with success.
class StreamingAgent final
    : public grpc::ClientBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  StreamingAgent(v1::Coordinator::Stub& stub, int index) {
    stub.async()->Connect(&context_, this);
    StartRead(&incoming_);
    StartCall();
    v1::AgentMessage hello;
    hello.mutable_hello()->set_node_name("node-" + std::to_string(index));
    hello.mutable_hello()->set_volume_id("volume-" + std::to_string(index));
    hello.mutable_hello()->set_capacity_bytes(1 << 20);
    hello.mutable_hello()->set_agent_version("test");
    Send(std::move(hello));
    v1::AgentMessage report;
    report.mutable_usage()->set_full(true);
    for (int model = 0; model < kModels; ++model) {
      v1::ModelUsage* usage = report.mutable_usage()->add_models();
      usage->set_name("m" + std::to_string(model));
      usage->set_version("1");
      usage->set_size_bytes(100);
      usage->set_state(v1::ModelUsage::READY);
    }
    Send(std::move(report));
  }

  bool GotPolicy() {
    std::lock_guard lock(mutex_);
    return policies_ > 0;
  }
  std::vector<std::string> CommandIds() {
    std::lock_guard lock(mutex_);
    return command_ids_;
  }
  bool Done() {
    std::lock_guard lock(mutex_);
    return done_;
  }
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::optional<v1::AgentMessage> answer;
    {
      std::lock_guard lock(mutex_);
      if (incoming_.has_policy()) ++policies_;
      if (incoming_.has_command()) {
        command_ids_.push_back(incoming_.command().id());
        answer.emplace();
        answer->mutable_result()->set_command_id(incoming_.command().id());
        answer->mutable_result()->set_bytes_freed(100);
      }
    }
    if (answer) Send(std::move(*answer));
    StartRead(&incoming_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    outgoing_.pop_front();
    if (ok && !outgoing_.empty()) {
      StartWrite(&outgoing_.front());
    } else {
      writing_ = false;
    }
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard lock(mutex_);
    done_ = true;
  }

 private:
  void Send(v1::AgentMessage message) {
    std::lock_guard lock(mutex_);
    outgoing_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&outgoing_.front());
    }
  }

  grpc::ClientContext context_;
  v1::CoordinatorMessage incoming_;
  std::mutex mutex_;
  std::deque<v1::AgentMessage> outgoing_;  // the front is in flight while writing_
  bool writing_ = false;
  int policies_ = 0;
  std::vector<std::string> command_ids_;
  bool done_ = false;
};

TEST(CoordinatorStreams, SixHundredAgentsAllGetAnswers) {
  testing::TempDir dir;
  const uint16_t port = testing::FreeTcpPort();
  const std::string target = "127.0.0.1:" + std::to_string(port);
  testing::WriteTestFile(dir.Path() / "coordinator.yaml",
                         "modelsCacheStorage:\n  storageSize: 1Ti\n"
                         "  checkUnusedCachedModelsEvery: 1h\n  purgeUnusedCachedModelsAfter: 1w\n"
                         "coordinator:\n  listen: " + target + "\n  database: " +
                             dir.Join("coordinator.db") + "\n  maxThreads: " +
                             std::to_string(kAdminThreads) + "\n");
  testing::SubprocessOptions options;
  options.argv = {MODELCACHE_BINARY_DIR "/coordinator/modelcache-coordinator", "--config",
                  dir.Join("coordinator.yaml"), "--log-level", "warn"};
  options.stderr_path = dir.Join("coordinator.log");
  auto coordinator = testing::Subprocess::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();

  auto admin = v1::Coordinator::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  auto nodes = [&](v1::NodesResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    return admin->Nodes(&context, v1::NodesRequest(), response).ok();
  };
  auto connected_nodes = [&] {
    v1::NodesResponse response;
    if (!nodes(&response)) return -1;
    int connected = 0;
    for (const v1::NodeInfo& node : response.nodes()) connected += node.connected() ? 1 : 0;
    return connected;
  };
  // Volumes whose usage shows exactly `models` models.
  auto volumes_with = [&](int models) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::UsageResponse usage;
    if (!admin->Usage(&context, v1::UsageRequest(), &usage).ok()) return -1;
    int count = 0;
    for (const v1::VolumeUsage& volume : usage.volumes()) {
      count += volume.model_count() == static_cast<uint32_t>(models) ? 1 : 0;
    }
    return count;
  };
  ASSERT_TRUE(PollUntil([&] { return connected_nodes() == 0; }, kDeadline, 50ms))
      << testing::ReadTestFile(dir.Join("coordinator.log"));

  std::vector<std::unique_ptr<v1::Coordinator::Stub>> stubs;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("modelcache.test.channel", i);  // distinct connections, not one shared
    stubs.push_back(v1::Coordinator::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments)));
  }
  std::vector<std::unique_ptr<StreamingAgent>> agents;
  for (int i = 0; i < kStreams; ++i) {
    agents.push_back(std::make_unique<StreamingAgent>(*stubs[i % kChannels], i));
  }
  // Cancel and drain the streams whatever happens below: the reactors must outlive them.
  struct Drain {
    std::vector<std::unique_ptr<StreamingAgent>>& agents;
    ~Drain() {
      for (auto& agent : agents) agent->Cancel();
      PollUntil([&] {
        for (auto& agent : agents) {
          if (!agent->Done()) return false;
        }
        return true;
      }, 30s);
    }
  } drain{agents};

  auto count = [&](auto predicate) {
    int matching = 0;
    for (auto& agent : agents) matching += predicate(*agent) ? 1 : 0;
    return matching;
  };
  EXPECT_TRUE(PollUntil([&] { return count([](StreamingAgent& a) { return a.GotPolicy(); }) == kStreams; },
                        kDeadline, 50ms))
      << count([](StreamingAgent& a) { return a.GotPolicy(); }) << " of " << kStreams
      << " streams got the caching policy; log:\n" << testing::ReadTestFile(dir.Join("coordinator.log"));
  EXPECT_EQ(count([](StreamingAgent& a) { return a.Done(); }), 0) << "no stream was refused";
  EXPECT_TRUE(PollUntil([&] { return connected_nodes() == kStreams; }, kDeadline, 50ms))
      << connected_nodes();
  ASSERT_TRUE(PollUntil([&] { return volumes_with(kModels) == kStreams; }, kDeadline, 50ms))
      << volumes_with(kModels) << " volumes show the full report";

  // One purge command per volume, each answered on its stream and recorded.
  v1::PurgeRequest purge;
  purge.set_name("m0");
  v1::PurgeResponse purged;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    grpc::Status status = admin->Purge(&context, purge, &purged);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_EQ(purged.actions_size(), kStreams);
  EXPECT_TRUE(PollUntil([&] { return volumes_with(kModels - 1) == kStreams; }, kDeadline, 50ms))
      << volumes_with(kModels - 1) << " volumes show the purge's result";
  std::set<std::string> ids;
  for (auto& agent : agents) {
    std::vector<std::string> received = agent->CommandIds();
    EXPECT_EQ(received.size(), 1u);
    ids.insert(received.begin(), received.end());
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kStreams)) << "every volume got its own command";

  // Every stream's end is recorded.
  for (auto& agent : agents) agent->Cancel();
  EXPECT_TRUE(PollUntil([&] { return connected_nodes() == 0; }, kDeadline, 50ms))
      << connected_nodes() << " nodes still connected";
  EXPECT_EQ((*coordinator)->Terminate().ToString(), "exit 0")
      << testing::ReadTestFile(dir.Join("coordinator.log"));
}

}  // namespace
}  // namespace modelcache
