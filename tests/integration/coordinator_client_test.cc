// CoordinatorClient against an in-process fake coordinator on 127.0.0.1: a command the
// coordinator sends again after the agent restarted is answered from the agent's record of
// answers (CommandAnswers in its state folder) instead of running a second time.
#include "agent/coordination/coordinator_client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "agent/coordination/command_answers.h"
#include "modelcache/v1/coordinator.grpc.pb.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;

// Sends one purge command (always the same id) to every agent that connects, and keeps the
// answers it gets.
class FakeCoordinator final : public v1::Coordinator::Service {
 public:
  grpc::Status Connect(grpc::ServerContext*,
                       grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::AgentMessage>* stream)
      override {
    v1::AgentMessage message;
    if (!stream->Read(&message) || !message.has_hello()) return grpc::Status::CANCELLED;
    v1::CoordinatorMessage command;
    command.mutable_command()->set_id("42");
    command.mutable_command()->mutable_purge()->set_name("m");
    command.mutable_command()->mutable_purge()->set_version("1");
    command.mutable_command()->mutable_purge()->set_reason("unused: test");
    stream->Write(command);
    while (stream->Read(&message)) {
      if (!message.has_result()) continue;
      std::lock_guard lock(mutex_);
      results_.push_back(message.result());
      changed_.notify_all();
    }
    return grpc::Status::OK;
  }

  // Waits until `count` answers arrived (false after `timeout`).
  bool WaitForResults(size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return results_.size() >= count; });
  }
  std::vector<v1::CommandResult> Results() {
    std::lock_guard lock(mutex_);
    return results_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<v1::CommandResult> results_;
};

// A cache with one model of 1000 bytes; counts the purges it is asked to run.
class CountingOps final : public LocalCacheOps {
 public:
  std::vector<v1::ModelUsage> Usage() override { return {}; }
  Space VolumeSpace() override { return Space{1 << 20, 1 << 19}; }
  absl::StatusOr<uint64_t> Purge(const std::string&, const std::string&) override {
    return ++purges == 1 ? uint64_t{1000} : uint64_t{0};
  }
  absl::Status Prefetch(const std::string&, const std::string&, const std::string&) override {
    return absl::OkStatus();
  }
  void ApplyCachingPolicy(const v1::CachingPolicy&) override {}
  std::atomic<int> purges{0};
};

TEST(CoordinatorClient, CommandResentAfterAgentRestartIsAnsweredFromTheRecord) {
  FakeCoordinator coordinator;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&coordinator);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(port, 0);

  testing::TempDir state;
  const auto answers_file = state.Path() / "agents" / "node-a" / "command-answers.bin";
  CountingOps ops;
  CoordinatorClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(port);
  options.node_name = "node-a";
  options.volume_id = "vol";
  options.report_interval = 100ms;
  options.min_backoff = 50ms;

  for (int run = 1; run <= 2; ++run) {  // the agent process, started twice
    absl::StatusOr<std::unique_ptr<CommandAnswers>> answers = CommandAnswers::Open(answers_file, 64);
    ASSERT_TRUE(answers.ok()) << answers.status();
    options.answers = answers->get();
    CoordinatorClient client(options, ops);
    client.Start();
    ASSERT_TRUE(coordinator.WaitForResults(run, 20s)) << "run " << run;
    client.Stop();
  }

  std::vector<v1::CommandResult> results = coordinator.Results();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(ops.purges.load(), 1);  // run once, answered twice
  for (const v1::CommandResult& result : results) {
    EXPECT_EQ(result.command_id(), "42");
    EXPECT_EQ(result.code(), 0);
    EXPECT_EQ(result.bytes_freed(), 1000u);  // the first run's answer, not a second purge's 0
  }
  server->Shutdown(std::chrono::system_clock::now() + 1s);
}

TEST(CoordinatorClient, WithoutAnAnswerFileARestartRunsTheCommandAgain) {
  // The contrast to the test above: memory-only answers die with the process.
  FakeCoordinator coordinator;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&coordinator);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  CountingOps ops;
  CoordinatorClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(port);
  options.node_name = "node-a";
  options.volume_id = "vol";
  options.min_backoff = 50ms;
  for (int run = 1; run <= 2; ++run) {
    CoordinatorClient client(options, ops);
    client.Start();
    ASSERT_TRUE(coordinator.WaitForResults(run, 20s)) << "run " << run;
    client.Stop();
  }
  EXPECT_EQ(ops.purges.load(), 2);
  EXPECT_EQ(coordinator.Results()[1].bytes_freed(), 0u);
  server->Shutdown(std::chrono::system_clock::now() + 1s);
}

}  // namespace
}  // namespace modelcache
