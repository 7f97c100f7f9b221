// Load driver for the coordinator: N simulated agents, each one Connect stream (HTTP/2
// multiplexed over a few channels, callback API so a handful of threads drive thousands of
// streams), each reporting M models: a full report on connect, then a delta every interval
// in which a few models were accessed. Prints reports sent per second and the p50/p99 time
// from starting a report's write to the coordinator's transport accepting it (a coordinator
// that falls behind stops reading, and HTTP/2 flow control makes this grow).
// scripts/bench-coordinator.sh adds the coordinator's own CPU, RSS and handling latency.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "modelcache/v1/coordinator.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Latencies {
 public:
  void Add(double seconds) {
    std::lock_guard lock(mutex_);
    samples_.push_back(seconds);
  }
  double Quantile(double q) {
    std::lock_guard lock(mutex_);
    if (samples_.empty()) return 0;
    std::vector<double> sorted = samples_;
    std::sort(sorted.begin(), sorted.end());
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()))];
  }
  size_t Count() {
    std::lock_guard lock(mutex_);
    return samples_.size();
  }

 private:
  std::mutex mutex_;
  std::vector<double> samples_;
};

class SimulatedAgent final
    : public grpc::ClientBidiReactor<modelcache::v1::AgentMessage, modelcache::v1::CoordinatorMessage> {
 public:
  SimulatedAgent(modelcache::v1::Coordinator::Stub& stub, const std::string& token, int index,
                 int models, Latencies& full_reports, Latencies& deltas)
      : index_(index), models_(models), deltas_(deltas), random_(index) {
    if (!token.empty()) context_.AddMetadata("authorization", "Bearer " + token);
    context_.set_wait_for_ready(true);
    stub.async()->Connect(&context_, this);
    StartRead(&incoming_);
    StartCall();
    modelcache::v1::AgentMessage hello;
    auto* body = hello.mutable_hello();
    body->set_node_name("bench-node-" + std::to_string(index));
    body->set_volume_id("bench-volume-" + std::to_string(index));
    body->set_capacity_bytes(1ull << 40);
    body->set_free_bytes(1ull << 39);
    body->set_agent_version("bench");
    Send(std::move(hello), nullptr);
    Send(Report(true), &full_reports);
  }

  // A delta in which a few models were used since the last one.
  void SendDelta() { Send(Report(false), &deltas_); }

  void Cancel() { context_.TryCancel(); }
  void WaitDone() {
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [this] { return done_; });
  }
  bool Failed() {
    std::lock_guard lock(mutex_);
    return done_ && !status_.ok() && status_.error_code() != grpc::StatusCode::CANCELLED;
  }
  std::string Error() {
    std::lock_guard lock(mutex_);
    return status_.error_message();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    if (ok && queue_.front().sink != nullptr) {
      queue_.front().sink->Add(std::chrono::duration<double>(Clock::now() - queue_.front().started).count());
    }
    queue_.pop_front();
    if (!ok) {
      writing_ = false;
      return;
    }
    if (!queue_.empty()) {
      queue_.front().started = Clock::now();
      StartWrite(&queue_.front().message);
    } else {
      writing_ = false;
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (incoming_.has_command()) {
      modelcache::v1::AgentMessage answer;
      answer.mutable_result()->set_command_id(incoming_.command().id());
      Send(std::move(answer), nullptr);
    }
    StartRead(&incoming_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(mutex_);
    status_ = status;
    done_ = true;
    done_cv_.notify_all();
  }

 private:
  struct Outgoing {
    modelcache::v1::AgentMessage message;
    Latencies* sink;  // where the write's latency goes; nullptr: not measured
    Clock::time_point started;
  };

  modelcache::v1::AgentMessage Report(bool full) {
    modelcache::v1::AgentMessage message;
    auto* report = message.mutable_usage();
    report->set_full(full);
    const int64_t now = NowUnixMs();
    std::uniform_int_distribution<int> pick(0, models_ - 1);
    const int changed = full ? models_ : std::max(1, models_ / 20);
    for (int i = 0; i < changed; ++i) {
      int model = full ? i : pick(random_);
      auto* usage = report->add_models();
      usage->set_name("model-" + std::to_string(model));
      usage->set_version("v1");
      usage->set_size_bytes(1ull << 30);
      usage->set_last_access_unix_ms(now - (full ? 3'600'000 : 0));
      usage->set_state(modelcache::v1::ModelUsage::READY);
    }
    return message;
  }

  void Send(modelcache::v1::AgentMessage message, Latencies* sink) {
    std::lock_guard lock(mutex_);
    if (done_) return;
    queue_.push_back(Outgoing{std::move(message), sink, Clock::now()});
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front().message);
    }
  }

  const int index_;
  const int models_;
  Latencies& deltas_;
  std::mt19937 random_;
  grpc::ClientContext context_;
  modelcache::v1::CoordinatorMessage incoming_;
  std::mutex mutex_;
  std::deque<Outgoing> queue_;  // deque: the front stays put while others are appended
  bool writing_ = false;
  bool done_ = false;
  grpc::Status status_;
  std::condition_variable done_cv_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coordinator load driver"};
  std::string target = "127.0.0.1:7070";
  std::string token;
  int agents = 2000;
  int models = 200;
  int channels = 4;
  double interval_seconds = 10;
  double duration_seconds = 60;
  app.add_option("--target", target, "Coordinator host:port");
  app.add_option("--token", token, "Agent bearer token");
  app.add_option("--agents", agents, "Simulated agents (one stream each)");
  app.add_option("--models", models, "Models per agent");
  app.add_option("--channels", channels, "TCP connections the streams share");
  app.add_option("--interval", interval_seconds, "Seconds between an agent's reports");
  app.add_option("--duration", duration_seconds, "Seconds to measure after every agent connected");
  CLI11_PARSE(app, argc, argv);
  // scripts/bench-coordinator.sh watches the output to tell the connect burst from the rest.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::vector<std::unique_ptr<modelcache::v1::Coordinator::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("modelcache.bench.channel", i);  // distinct channels, not one shared subchannel
    stubs.push_back(modelcache::v1::Coordinator::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments)));
  }
  Latencies connect_latencies, latencies;
  std::vector<std::unique_ptr<SimulatedAgent>> simulated;
  const auto connect_started = Clock::now();
  for (int i = 0; i < agents; ++i) {
    simulated.push_back(std::make_unique<SimulatedAgent>(*stubs[i % channels], token, i, models,
                                                         connect_latencies, latencies));
  }
  // Every agent's full report accepted (or the stream failed).
  while (connect_latencies.Count() < static_cast<size_t>(agents) &&
         Clock::now() - connect_started < 300s) {
    std::this_thread::sleep_for(50ms);
  }
  const double connect_seconds = std::chrono::duration<double>(Clock::now() - connect_started).count();
  std::printf("connected %zu/%d agents with full reports of %d models in %.1f s\n",
              connect_latencies.Count(), agents, models, connect_seconds);

  // Spread the agents evenly over the interval, as real agents drift apart.
  const auto interval = std::chrono::duration<double>(interval_seconds);
  const auto started = Clock::now();
  std::vector<Clock::time_point> next(agents);
  for (int i = 0; i < agents; ++i) {
    next[i] = started + std::chrono::duration_cast<Clock::duration>(interval * i / agents);
  }
  uint64_t sent = 0;
  while (Clock::now() - started < std::chrono::duration<double>(duration_seconds)) {
    const auto now = Clock::now();
    for (int i = 0; i < agents; ++i) {
      if (next[i] <= now) {
        simulated[i]->SendDelta();
        ++sent;
        next[i] += std::chrono::duration_cast<Clock::duration>(interval);
      }
    }
    std::this_thread::sleep_for(5ms);
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  int failed = 0;
  std::string error;
  for (auto& agent : simulated) {
    if (agent->Failed()) {
      ++failed;
      error = agent->Error();
    }
  }
  std::printf("reports sent: %llu in %.1f s = %.0f reports/s (target %.0f/s)\n",
              static_cast<unsigned long long>(sent), elapsed, sent / elapsed,
              agents / interval_seconds);
  std::printf("report accepted by the coordinator: p50 %.2f ms, p99 %.2f ms (%zu samples)\n",
              latencies.Quantile(0.5) * 1000, latencies.Quantile(0.99) * 1000, latencies.Count());
  std::printf("streams failed: %d%s%s\n", failed, failed ? " (last: " : "",
              failed ? (error + ")").c_str() : "");
  for (auto& agent : simulated) agent->Cancel();
  for (auto& agent : simulated) agent->WaitDone();
  return failed == 0 ? 0 : 1;
}
