#include "agent/coordination/coordinator_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "agent/coordination/command_answers.h"
#include "agent/coordination/coordinator_channel.h"
#include "common/grpc_status.h"
#include "common/log_fields.h"
#include "common/status_format.h"
#include "modelcache/v1/coordinator.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::CoordinatorMessage>;
using UsageKey = std::pair<std::string, std::string>;

constexpr std::chrono::seconds kExtraVolumeRescan{60};

bool SameUsage(const v1::ModelUsage& a, const v1::ModelUsage& b) {
  return a.size_bytes() == b.size_bytes() && a.last_access_unix_ms() == b.last_access_unix_ms() &&
         a.live_leases() == b.live_leases() && a.state() == b.state() &&
         std::equal(a.lease_holders().begin(), a.lease_holders().end(), b.lease_holders().begin(),
                    b.lease_holders().end());
}

}  // namespace

class CoordinatorClient::Impl {
 public:
  Impl(CoordinatorClientOptions options, LocalCacheOps& ops)
      : options_(std::move(options)), ops_(ops) {
    if (options_.answers == nullptr) {
      own_answers_ = CommandAnswers::InMemory(options_.remembered_results);
      answers_ = own_answers_.get();
    } else {
      answers_ = options_.answers;
    }
    std::shared_ptr<grpc::ChannelCredentials> credentials = CoordinatorChannelCredentials(options_);
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    arguments.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // Our own backoff decides when to retry; keep gRPC's reconnect quick.
    arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                     static_cast<int>(std::max<int64_t>(100, options_.max_backoff.count())));
    channel_ = grpc::CreateCustomChannel(options_.target, credentials, arguments);
    stub_ = v1::Coordinator::NewStub(channel_);
  }

  ~Impl() { Stop(); }

  void Start() {
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || stopping_) return;
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void ReportNow() {
    {
      std::lock_guard lock(mutex_);
      report_now_ = true;
    }
    wake_.notify_all();
  }

  bool Connected() const { return connected_.load(); }
  uint64_t Connections() const { return connections_.load(); }
  uint64_t CommandsExecuted() const { return executed_.load(); }
  int64_t LastReportUnixSeconds() const { return last_report_unix_seconds_.load(); }

 private:
  void Run() {
    std::mt19937_64 random(std::random_device{}());
    std::chrono::milliseconds backoff = options_.min_backoff;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      const auto started = std::chrono::steady_clock::now();
      bool reached = RunOneStream();
      {
        std::unique_lock lock(mutex_);
        if (stopping_) return;
        if (reached && std::chrono::steady_clock::now() - started > options_.min_backoff) {
          backoff = options_.min_backoff;
        }
        // Full jitter in [backoff/2, backoff]: agents that lost the coordinator together do not
        // come back together.
        std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
        std::chrono::milliseconds delay(jitter(random));
        wake_.wait_for(lock, delay, [this] { return stopping_; });
        backoff = std::min(options_.max_backoff, backoff * 2);
      }
    }
  }

  // One Connect call, from hello to the end of the stream. True if the coordinator answered.
  bool RunOneStream() {
    grpc::ClientContext context;
    if (std::string token = CoordinatorBearerToken(options_); !token.empty()) {
      context.AddMetadata("authorization", "Bearer " + token);
    }
    // Wait for the channel instead of failing fast: gRPC's own reconnect backoff (capped at
    // max_backoff) paces the attempts while the coordinator is down. Stop() cancels.
    context.set_wait_for_ready(true);
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return false;
      context_ = &context;
    }
    std::unique_ptr<Stream> stream = stub_->Connect(&context);
    {
      std::lock_guard lock(mutex_);
      reader_done_ = false;
    }
    stream_ = stream.get();
    bool reached = false;

    v1::AgentMessage hello;
    v1::AgentHello* body = hello.mutable_hello();
    body->set_node_name(options_.node_name);
    body->set_volume_id(options_.volume_id);
    body->set_agent_version(options_.agent_version);
    LocalCacheOps::Space space = ops_.VolumeSpace();
    body->set_capacity_bytes(space.capacity_bytes);
    body->set_free_bytes(space.free_bytes);
    std::vector<LocalCacheOps::ExtraVolumeUsage> extras = ops_.ExtraVolumes();
    for (const LocalCacheOps::ExtraVolumeUsage& extra : extras) {
      v1::ExtraVolume* volume = body->add_extra_volumes();
      volume->set_volume_id(extra.volume_id);
      volume->set_capacity_bytes(extra.space.capacity_bytes);
      volume->set_free_bytes(extra.space.free_bytes);
    }
    std::map<UsageKey, v1::ModelUsage> sent;
    // What was last sent per extra volume; a volume is absent until its first full report.
    std::map<std::string, std::map<UsageKey, v1::ModelUsage>> extra_sent;
    bool ok = Write(hello) && SendUsage(/*full=*/true, sent) &&
              SendExtraUsage(std::move(extras), extra_sent);

    std::thread reader;
    if (ok) reader = std::thread([this, &reached] { ReadLoop(reached); });
    // Listing an extra volume walks its models; it changes only through a cleanup or migrate
    // (which ask for a report now) or through other agents, so a heartbeat lists it only
    // every kExtraVolumeRescan.
    auto extras_listed = std::chrono::steady_clock::now();
    while (ok) {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.report_interval,
                     [this] { return stopping_ || report_now_ || reader_done_; });
      if (stopping_ || reader_done_) break;
      const bool asked = report_now_;
      report_now_ = false;
      lock.unlock();
      ok = SendUsage(/*full=*/false, sent);
      const auto now = std::chrono::steady_clock::now();
      if (ok && (asked || now - extras_listed >= kExtraVolumeRescan)) {
        extras_listed = now;
        ok = SendExtraUsage(ops_.ExtraVolumes(), extra_sent);
      }
    }
    context.TryCancel();
    if (reader.joinable()) reader.join();
    grpc::Status status = stream->Finish();
    connected_ = false;
    {
      std::lock_guard lock(mutex_);
      context_ = nullptr;
      stream_ = nullptr;
      // Log once per outage, not once per attempt.
      if (!stopping_ && (reached || status.error_code() != last_error_code_)) {
        spdlog::warn("coordinator disconnected {}",
                     LogFields()
                         .Add("coordinator", options_.target)
                         .Add("node", options_.node_name)
                         .Add("error", FromGrpcStatus(status))
                         .Add("next", "reconnecting with backoff; the cache keeps serving"));
      }
      last_error_code_ = reached ? grpc::StatusCode::OK : status.error_code();
    }
    return reached;
  }

  void ReadLoop(bool& reached) {
    v1::CoordinatorMessage message;
    while (stream_->Read(&message)) {
      if (!reached) {
        reached = true;
        connected_ = true;
        ++connections_;
        spdlog::info("coordinator connected {}", LogFields()
                                                      .Add("coordinator", options_.target)
                                                      .Add("node", options_.node_name)
                                                      .Add("volume", options_.volume_id));
      }
      if (message.has_policy()) {
        ops_.ApplyCachingPolicy(message.policy());
      } else if (message.has_command()) {
        v1::AgentMessage answer;
        *answer.mutable_result() = Execute(message.command());
        if (!Write(answer)) break;
        if (message.command().has_purge()) ReportNow();
      }
    }
    {
      std::lock_guard lock(mutex_);
      reader_done_ = true;
    }
    wake_.notify_all();
  }

  v1::CommandResult Execute(const v1::Command& command) {
    if (std::optional<v1::CommandResult> remembered = answers_->Find(command.id())) {
      spdlog::info("command answered again {}",
                   LogFields()
                       .Add("command", command.id())
                       .Add("code", remembered->code())
                       .Add("next", "the recorded answer is sent; the command does not run again"));
      return *std::move(remembered);
    }
    v1::CommandResult result;
    result.set_command_id(command.id());
    absl::Status status;
    if (command.has_purge()) {
      const v1::PurgeCommand& purge = command.purge();
      absl::StatusOr<uint64_t> freed = ops_.Purge(purge.name(), purge.version());
      status = freed.status();
      if (freed.ok()) {
        result.set_bytes_freed(*freed);
        if (options_.on_purged) options_.on_purged(purge.reason(), *freed);
      }
      LogFields fields;
      fields.Add("command", command.id())
          .Add("model", purge.name())
          .Add("version", purge.version())
          .Add("reason", purge.reason());
      if (freed.ok()) {
        spdlog::info("purge done {}", fields.Add("bytes", *freed));
      } else {
        spdlog::warn("purge refused {}", fields.Add("error", status).Add(
                                             "next", "the coordinator is told and decides again"));
      }
    } else if (command.has_prefetch()) {
      const v1::PrefetchCommand& prefetch = command.prefetch();
      status = ops_.Prefetch(prefetch.name(), prefetch.version(), prefetch.source());
      LogFields fields;
      fields.Add("command", command.id())
          .Add("model", prefetch.name())
          .Add("version", prefetch.version())
          .Add("source", prefetch.source());
      if (status.ok()) {
        spdlog::info("prefetch started {}", fields);
      } else {
        spdlog::warn("prefetch refused {}",
                     fields.Add("error", status).Add("next", "the coordinator is told"));
      }
    } else {
      status = absl::UnimplementedError("unknown command kind");
    }
    ++executed_;
    result.set_code(static_cast<int>(status.code()));
    result.set_message(std::string(status.message()));
    // Recorded before it is sent: a crash after this line cannot run the command twice.
    absl::Status recorded = answers_->Record(result);
    if (!recorded.ok()) {
      spdlog::warn("command answer not saved {}",
                   LogFields()
                       .Add("command", command.id())
                       .Add("error", recorded)
                       .Add("next", "answered anyway; an agent restart forgets it"));
    }
    return result;
  }

  bool SendUsage(bool full, std::map<UsageKey, v1::ModelUsage>& sent) {
    return SendReport(full, /*volume_id=*/"", ops_.VolumeSpace(), ops_.Usage(), sent,
                      /*skip_unchanged=*/false);
  }

  // One report per extra volume that could be listed: a full one the first time on this
  // stream, then deltas, sent only when something changed (the served volume's report is the
  // heartbeat).
  bool SendExtraUsage(std::vector<LocalCacheOps::ExtraVolumeUsage> extras,
                      std::map<std::string, std::map<UsageKey, v1::ModelUsage>>& extra_sent) {
    for (LocalCacheOps::ExtraVolumeUsage& extra : extras) {
      if (!extra.listed) continue;
      auto [sent, first] = extra_sent.try_emplace(extra.volume_id);
      if (!SendReport(first, extra.volume_id, extra.space, std::move(extra.models), sent->second,
                      /*skip_unchanged=*/!first)) {
        return false;
      }
    }
    return true;
  }

  bool SendReport(bool full, const std::string& volume_id, LocalCacheOps::Space space,
                  std::vector<v1::ModelUsage> models, std::map<UsageKey, v1::ModelUsage>& sent,
                  bool skip_unchanged) {
    v1::AgentMessage message;
    v1::UsageReport* report = message.mutable_usage();
    report->set_full(full);
    report->set_volume_id(volume_id);
    report->set_capacity_bytes(space.capacity_bytes);
    report->set_free_bytes(space.free_bytes);
    std::map<UsageKey, v1::ModelUsage> now;
    for (v1::ModelUsage& usage : models) {
      UsageKey key{usage.name(), usage.version()};
      now[key] = std::move(usage);
    }
    for (const auto& [key, usage] : now) {
      auto before = sent.find(key);
      if (full || before == sent.end() || !SameUsage(before->second, usage)) {
        *report->add_models() = usage;
      }
    }
    if (!full) {
      for (const auto& [key, usage] : sent) {
        if (now.count(key) == 0) {
          v1::ModelKey* removed = report->add_removed();
          removed->set_name(key.first);
          removed->set_version(key.second);
        }
      }
    }
    if (skip_unchanged && report->models_size() == 0 && report->removed_size() == 0) {
      return true;
    }
    if (!Write(message)) return false;
    sent = std::move(now);
    if (!volume_id.empty()) return true;  // the served volume's report is the one timed
    last_report_unix_seconds_ = std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    return true;
  }

  bool Write(const v1::AgentMessage& message) {
    std::lock_guard lock(write_mutex_);
    return stream_->Write(message);
  }

  const CoordinatorClientOptions options_;
  LocalCacheOps& ops_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;

  std::mutex mutex_;  // guards the flags below and context_
  std::condition_variable wake_;
  bool stopping_ = false;
  bool report_now_ = false;
  bool reader_done_ = false;
  grpc::ClientContext* context_ = nullptr;
  std::thread thread_;
  grpc::StatusCode last_error_code_ = grpc::StatusCode::OK;  // run thread only

  std::mutex write_mutex_;     // one writer at a time on the stream
  Stream* stream_ = nullptr;   // set by the run thread while a stream is open

  std::unique_ptr<CommandAnswers> own_answers_;  // when options_.answers is null
  CommandAnswers* answers_ = nullptr;            // thread-safe itself

  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> executed_{0};
  std::atomic<int64_t> last_report_unix_seconds_{0};
};

CoordinatorClient::CoordinatorClient(CoordinatorClientOptions options, LocalCacheOps& ops)
    : impl_(std::make_unique<Impl>(std::move(options), ops)) {}
CoordinatorClient::~CoordinatorClient() = default;
void CoordinatorClient::Start() { impl_->Start(); }
void CoordinatorClient::Stop() { impl_->Stop(); }
void CoordinatorClient::ReportNow() { impl_->ReportNow(); }
bool CoordinatorClient::Connected() const { return impl_->Connected(); }
uint64_t CoordinatorClient::Connections() const { return impl_->Connections(); }
int64_t CoordinatorClient::LastReportUnixSeconds() const {
  return impl_->LastReportUnixSeconds();
}
uint64_t CoordinatorClient::CommandsExecuted() const { return impl_->CommandsExecuted(); }

std::string CoordinatorBearerToken(const CoordinatorClientOptions& options) {
  if (options.token_file != nullptr) {
    absl::StatusOr<std::string> current = options.token_file->Current();
    if (current.ok()) return *std::move(current);
  }
  return options.token;
}

}  // namespace modelcache
