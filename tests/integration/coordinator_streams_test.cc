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
// threads: hello and a full report, then it answers every command with success (or, when
// `answer` is false, takes commands without answering, as an agent whose link died would).
class StreamingAgent final
    : public grpc::ClientBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  StreamingAgent(v1::Coordinator::Stub& stub, int index, bool answer = true) : answer_(answer) {
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
        if (answer_) {
          answer.emplace();
          answer->mutable_result()->set_command_id(incoming_.command().id());
          answer->mutable_result()->set_bytes_freed(100);
        }
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

  const bool answer_;
  grpc::ClientContext context_;
  v1::CoordinatorMessage incoming_;
  std::mutex mutex_;
  std::deque<v1::AgentMessage> outgoing_;  // the front is in flight while writing_
  bool writing_ = false;
  int policies_ = 0;
  std::vector<std::string> command_ids_;
  bool done_ = false;
};

// The coordinator process (no tokens, admin threads limited) and admin calls to it.
class Coordinator {
 public:
  Coordinator() : target_("127.0.0.1:" + std::to_string(testing::FreeTcpPort())) {
    testing::WriteTestFile(dir_.Path() / "coordinator.yaml",
                           "modelsCacheStorage:\n  storageSize: 1Ti\n"
                           "  checkUnusedCachedModelsEvery: 1h\n"
                           "  purgeUnusedCachedModelsAfter: 1w\n"
                           "coordinator:\n  listen: " + target_ + "\n  database: " +
                               dir_.Join("coordinator.db") + "\n  maxThreads: " +
                               std::to_string(kAdminThreads) + "\n");
  }

  void Start() {
    testing::SubprocessOptions options;
    options.argv = {MODELCACHE_BINARY_DIR "/coordinator/modelcache-coordinator", "--config",
                    dir_.Join("coordinator.yaml"), "--log-level", "warn"};
    options.stderr_path = dir_.Join("coordinator.log");
    auto process = testing::Subprocess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = std::move(*process);
    // A fresh channel per attempt: one that failed waits out its reconnect backoff.
    ASSERT_TRUE(PollUntil(
        [&] {
          admin_ = v1::Coordinator::NewStub(
              grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
          return ConnectedNodes() == 0;
        },
        kDeadline, 50ms))
        << Log();
  }
  // SIGTERM; "exit 0" when it shut down cleanly.
  std::string Stop() { return process_->Terminate().ToString(); }

  const std::string& Target() const { return target_; }
  std::string Log() const { return testing::ReadTestFile(dir_.Join("coordinator.log")); }

  // Nodes whose stream is open, or -1 if the call failed.
  int ConnectedNodes() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::NodesResponse response;
    if (!admin_->Nodes(&context, v1::NodesRequest(), &response).ok()) return -1;
    int connected = 0;
    for (const v1::NodeInfo& node : response.nodes()) connected += node.connected() ? 1 : 0;
    return connected;
  }
  // Volumes whose usage shows exactly `models` models, or -1 if the call failed.
  int VolumesWith(int models) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::UsageResponse usage;
    if (!admin_->Usage(&context, v1::UsageRequest(), &usage).ok()) return -1;
    int count = 0;
    for (const v1::VolumeUsage& volume : usage.volumes()) {
      count += volume.model_count() == static_cast<uint32_t>(models) ? 1 : 0;
    }
    return count;
  }
  grpc::Status Purge(const std::string& name, v1::PurgeResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::PurgeRequest request;
    request.set_name(name);
    return admin_->Purge(&context, request, response);
  }

 private:
  testing::TempDir dir_;
  std::string target_;
  std::unique_ptr<v1::Coordinator::Stub> admin_;
  std::unique_ptr<testing::Subprocess> process_;
};

// Cancels the streams and waits for their end whatever happens in the test: the reactors must
// outlive their calls.
struct DrainStreams {
  std::vector<std::unique_ptr<StreamingAgent>>& agents;
  ~DrainStreams() {
    for (auto& agent : agents) agent->Cancel();
    PollUntil(
        [&] {
          for (auto& agent : agents) {
            if (!agent->Done()) return false;
          }
          return true;
        },
        30s);
  }
};

std::vector<std::unique_ptr<v1::Coordinator::Stub>> Stubs(const std::string& target, int count) {
  std::vector<std::unique_ptr<v1::Coordinator::Stub>> stubs;
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("modelcache.test.channel", i);  // distinct connections, not one shared
    stubs.push_back(v1::Coordinator::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments)));
  }
  return stubs;
}

TEST(CoordinatorStreams, SixHundredAgentsAllGetAnswers) {
  Coordinator coordinator;
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  auto stubs = Stubs(coordinator.Target(), kChannels);
  std::vector<std::unique_ptr<StreamingAgent>> agents;
  DrainStreams drain{agents};
  for (int i = 0; i < kStreams; ++i) {
    agents.push_back(std::make_unique<StreamingAgent>(*stubs[i % kChannels], i));
  }
  auto count = [&](auto predicate) {
    int matching = 0;
    for (auto& agent : agents) matching += predicate(*agent) ? 1 : 0;
    return matching;
  };
  auto got_policy = [](StreamingAgent& agent) { return agent.GotPolicy(); };
  EXPECT_TRUE(PollUntil([&] { return count(got_policy) == kStreams; }, kDeadline, 50ms))
      << count(got_policy) << " of " << kStreams << " streams got the caching policy; log:\n"
      << coordinator.Log();
  EXPECT_EQ(count([](StreamingAgent& agent) { return agent.Done(); }), 0) << "none was refused";
  EXPECT_TRUE(PollUntil([&] { return coordinator.ConnectedNodes() == kStreams; }, kDeadline, 50ms))
      << coordinator.ConnectedNodes();
  ASSERT_TRUE(PollUntil([&] { return coordinator.VolumesWith(kModels) == kStreams; }, kDeadline,
                        50ms))
      << coordinator.VolumesWith(kModels) << " volumes show the full report";

  // One purge command per volume, each answered on its stream and recorded.
  v1::PurgeResponse purged;
  grpc::Status status = coordinator.Purge("m0", &purged);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(purged.actions_size(), kStreams);
  EXPECT_TRUE(PollUntil([&] { return coordinator.VolumesWith(kModels - 1) == kStreams; },
                        kDeadline, 50ms))
      << coordinator.VolumesWith(kModels - 1) << " volumes show the purge's result";
  std::set<std::string> ids;
  for (auto& agent : agents) {
    std::vector<std::string> received = agent->CommandIds();
    EXPECT_EQ(received.size(), 1u);
    ids.insert(received.begin(), received.end());
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kStreams)) << "every volume got its own command";

  // Every stream's end is recorded.
  for (auto& agent : agents) agent->Cancel();
  EXPECT_TRUE(PollUntil([&] { return coordinator.ConnectedNodes() == 0; }, kDeadline, 50ms))
      << coordinator.ConnectedNodes() << " nodes still connected";
  EXPECT_EQ(coordinator.Stop(), "exit 0") << coordinator.Log();
}

TEST(CoordinatorStreams, NodeReconnectingBeforeItsOldStreamEndedGetsItsUnansweredCommands) {
  Coordinator coordinator;
  ASSERT_NO_FATAL_FAILURE(coordinator.Start());
  auto stubs = Stubs(coordinator.Target(), 2);
  std::vector<std::unique_ptr<StreamingAgent>> agents;
  DrainStreams drain{agents};
  // The first stream takes the command and never answers: its link died unnoticed.
  agents.push_back(std::make_unique<StreamingAgent>(*stubs[0], 7, /*answer=*/false));
  ASSERT_TRUE(PollUntil([&] { return coordinator.VolumesWith(kModels) == 1; }, kDeadline, 50ms));
  v1::PurgeResponse purged;
  ASSERT_TRUE(coordinator.Purge("m0", &purged).ok());
  ASSERT_EQ(purged.actions_size(), 1);
  ASSERT_TRUE(PollUntil([&] { return agents[0]->CommandIds().size() == 1; }, kDeadline));
  const std::string command_id = agents[0]->CommandIds()[0];

  // The same node connects again while the coordinator still has the old stream open.
  agents.push_back(std::make_unique<StreamingAgent>(*stubs[1], 7, /*answer=*/true));
  EXPECT_TRUE(PollUntil([&] { return agents[1]->CommandIds().size() == 1; }, kDeadline))
      << "the new stream never got the command";
  if (agents[1]->CommandIds().size() == 1) EXPECT_EQ(agents[1]->CommandIds()[0], command_id);
  EXPECT_TRUE(PollUntil([&] { return coordinator.VolumesWith(kModels - 1) == 1; }, kDeadline))
      << "the answer on the new stream was not recorded";
  EXPECT_TRUE(PollUntil([&] { return agents[0]->Done(); }, kDeadline))
      << "the old stream was not ended";
  EXPECT_EQ(coordinator.ConnectedNodes(), 1);
}

}  // namespace
}  // namespace modelcache
