#include "coordinator/agent_stream.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "common/grpc_status.h"
#include "common/log_fields.h"
#include "common/status_format.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Messages queued for one agent that does not read them. Past this the agent is presumed
// stuck: its stream is cancelled, and it resynchronises when it reconnects.
constexpr size_t kMaxOutgoing = 1024;
// Bounds one usage transaction (and so the time the store's lock is held) while many full
// reports arrive at once.
constexpr size_t kMaxRowsPerTransaction = 20000;

size_t Rows(const v1::UsageReport& report) {
  return 1 + static_cast<size_t>(report.models_size()) + static_cast<size_t>(report.removed_size());
}

}  // namespace

// What a stream's read produced, handed from gRPC's thread to the worker.
struct AgentStreams::Event {
  std::shared_ptr<Session> session;
  std::optional<v1::AgentMessage> message;  // nullopt: the read side ended
  SteadyClock::time_point received;
};

// One Connect call. gRPC calls the reactions on its threads; they never block on the store.
// The session keeps itself alive (self_) until gRPC's OnDone; others may hold it longer, and
// then their Send/Cancel do nothing.
class AgentStreams::Session final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>,
      public std::enable_shared_from_this<Session> {
 public:
  Session(AgentStreams& owner, grpc::CallbackServerContext* context, std::string principal)
      : principal(std::move(principal)), owner_(owner), context_(context) {}

  // Once, right after construction (shared_from_this needs the owning shared_ptr).
  void Begin(absl::Status refused) {
    self_ = shared_from_this();
    {
      std::lock_guard lock(owner_.sessions_mutex_);
      owner_.open_.insert(this);
      if (owner_.refusing_ && refused.ok()) {
        refused = absl::UnavailableError("coordinator: shutting down");
      }
    }
    if (!refused.ok()) {
      FinishWith(ToGrpcStatus(refused));
      return;
    }
    ReadNext();
  }

  void ReadNext() { StartRead(&incoming_); }

  // Queues a message; false once the stream is finishing, broken or stuck.
  bool Send(const v1::CoordinatorMessage& message) {
    std::lock_guard lock(write_mutex_);
    if (finishing_ || write_failed_) return false;
    if (outgoing_.size() >= kMaxOutgoing) {
      spdlog::warn("agent stream cancelled {}",
                   LogFields()
                       .Add("node", node_name)
                       .Add("unread_messages", outgoing_.size())
                       .Add("error", "the agent does not read its stream")
                       .Add("next", "the agent reconnects and resyncs"));
      write_failed_ = true;
      if (!done_) context_->TryCancel();
      return false;
    }
    outgoing_.push_back(message);
    if (!writing_) {
      writing_ = true;
      StartWrite(&outgoing_.front());
    }
    return true;
  }

  // Ends the call with `status` once the write in flight (if any) completed; queued messages
  // that were not started are dropped. The first call wins.
  void FinishWith(grpc::Status status) {
    std::lock_guard lock(write_mutex_);
    if (finishing_) return;
    finishing_ = true;
    if (writing_) {
      outgoing_.resize(1);  // the front is in flight and must stay put
      finish_status_ = std::move(status);
      return;
    }
    outgoing_.clear();
    Finish(std::move(status));
  }

  void Cancel() {
    std::lock_guard lock(write_mutex_);
    if (!done_) context_->TryCancel();
  }

  void OnReadDone(bool ok) override;  // after Worker, which it posts to

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(write_mutex_);
    outgoing_.pop_front();
    if (finishing_) {
      writing_ = false;
      outgoing_.clear();
      Finish(std::move(finish_status_));
      return;
    }
    if (!ok) {  // the stream broke; the read side sees it too and closes the session
      writing_ = false;
      write_failed_ = true;
      outgoing_.clear();
      return;
    }
    if (outgoing_.empty()) {
      writing_ = false;
    } else {
      StartWrite(&outgoing_.front());
    }
  }

  void OnDone() override {
    owner_.Forget(this);
    {
      std::lock_guard lock(write_mutex_);
      done_ = true;
    }
    self_.reset();  // may destroy this; nothing may follow
  }

  const std::string principal;
  // Written by the worker before the session is registered in current_, constant after.
  std::string node_name;
  std::string volume_id;
  std::set<std::string> extra_volume_ids;  // the hello's extra_volumes
  bool hello_done = false;  // worker thread only

  // The volume a usage report speaks for; null when it names a volume the hello did not list.
  const std::string* ReportVolume(const v1::UsageReport& report) const {
    if (report.volume_id().empty()) return &volume_id;
    auto found = extra_volume_ids.find(report.volume_id());
    return found == extra_volume_ids.end() ? nullptr : &*found;
  }

  // Held while commands are claimed for this session and while its disconnect is recorded,
  // so a closing session is never handed commands after its disconnect put them back to
  // pending.
  std::mutex claim_mutex;
  bool closed = false;  // guarded by claim_mutex

 private:
  AgentStreams& owner_;
  grpc::CallbackServerContext* const context_;  // valid until OnDone
  v1::AgentMessage incoming_;                   // one read at a time
  std::shared_ptr<Session> self_;

  std::mutex write_mutex_;                       // guards the members below
  std::deque<v1::CoordinatorMessage> outgoing_;  // the front is in flight while writing_
  bool writing_ = false;
  bool write_failed_ = false;
  bool finishing_ = false;
  grpc::Status finish_status_;  // for a Finish deferred until the write in flight completes
  bool done_ = false;
};

// The one thread that talks to the store for the streams.
class AgentStreams::Worker {
 public:
  explicit Worker(AgentStreams& owner) : owner_(owner), thread_([this] { Run(); }) {}
  ~Worker() { Stop(); }

  void Post(Event event) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(event));
    }
    wake_.notify_one();
  }

  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::vector<Event> batch;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing left to finish
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.end()));
        queue_.clear();
      }
      Handle(batch);
      batch.clear();
    }
  }

  static bool IsUsage(const Event& event) {
    return event.message && event.message->has_usage() && event.session->hello_done &&
           event.session->ReportVolume(event.message->usage()) != nullptr;
  }

  // A stream appears at most once per batch (its next read starts after it was handled), so
  // runs of usage reports can be stored together without reordering any stream.
  void Handle(std::vector<Event>& batch) {
    size_t index = 0;
    while (index < batch.size()) {
      if (!IsUsage(batch[index])) {
        HandleOne(batch[index]);
        ++index;
        continue;
      }
      size_t end = index;
      size_t rows = 0;
      while (end < batch.size() && IsUsage(batch[end]) &&
             (end == index || rows < kMaxRowsPerTransaction)) {
        rows += Rows(batch[end].message->usage());
        ++end;
      }
      StoreUsage(batch, index, end);
      index = end;
    }
  }

  void HandleOne(Event& event) {
    const std::shared_ptr<Session>& session = event.session;
    if (!event.message) {
      if (session->hello_done) {
        Close(session, grpc::Status::OK);
      } else {
        session->FinishWith(grpc::Status(grpc::StatusCode::CANCELLED, "no hello"));
      }
      return;
    }
    if (!session->hello_done) {
      Hello(session, *event.message);
      return;
    }
    if (event.message->has_usage()) {  // not IsUsage: a volume the hello did not list
      Close(session, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "usage report for volume " + event.message->usage().volume_id() +
                                      ", which the hello did not list in extra_volumes"));
      return;
    }
    if (!event.message->has_result()) {  // a repeated hello or an unknown body: ignored
      session->ReadNext();
      return;
    }
    const v1::CommandResult& result = event.message->result();
    absl::Status status = owner_.store_.RecordResult(session->node_name, result, Now());
    owner_.metrics_.command_results->Increment();
    owner_.metrics_.bytes_freed->Increment(static_cast<double>(result.bytes_freed()));
    if (result.code() == 0) {
      spdlog::info("command done {}", LogFields()
                                          .Add("node", session->node_name)
                                          .Add("command", result.command_id())
                                          .Add("bytes_freed", result.bytes_freed()));
    } else {
      spdlog::warn("command failed {}",
                   LogFields()
                       .Add("node", session->node_name)
                       .Add("command", result.command_id())
                       .Add("error", StatusFromCode(result.code(), result.message()))
                       .Add("next", "a later policy pass may queue it again"));
    }
    if (!status.ok()) {
      spdlog::error("recording a command result failed {}",
                    LogFields()
                        .Add("node", session->node_name)
                        .Add("error", status)
                        .Add("next", "closing the stream; the agent reconnects"));
      Close(session, ToGrpcStatus(status));
      return;
    }
    session->ReadNext();
  }

  void Hello(const std::shared_ptr<Session>& session, const v1::AgentMessage& message) {
    if (!message.has_hello() || message.hello().node_name().empty() ||
        message.hello().volume_id().empty()) {
      session->FinishWith(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "the first message must be a hello with node_name and volume_id"));
      return;
    }
    const v1::AgentHello& hello = message.hello();
    // The node reconnected before its old stream was seen to end: commands sent on that one
    // may never have arrived. Put them back to pending (the agent answers an id it already
    // ran with the stored result) so that this stream gets them. Only this thread registers
    // sessions, so the old one stays current until ReplaceCurrent below.
    if (std::shared_ptr<Session> previous = owner_.Current(hello.node_name())) {
      std::lock_guard lock(previous->claim_mutex);
      previous->closed = true;
      absl::Status requeued = owner_.store_.RecordDisconnect(hello.node_name(), Now());
      if (!requeued.ok()) {
        spdlog::error("recording the old stream's end failed {}",
                      LogFields()
                          .Add("node", hello.node_name())
                          .Add("error", requeued)
                          .Add("next", "the new stream goes on; commands sent on the old one "
                                       "stay sent until a later disconnect is recorded or the "
                                       "coordinator restarts"));
      }
    }
    absl::Status status = owner_.store_.RecordHello(hello, Now());
    if (!status.ok()) {
      session->FinishWith(ToGrpcStatus(status));
      return;
    }
    session->node_name = hello.node_name();
    session->volume_id = hello.volume_id();
    for (const v1::ExtraVolume& extra : hello.extra_volumes()) {
      if (!extra.volume_id().empty() && extra.volume_id() != hello.volume_id()) {
        session->extra_volume_ids.insert(extra.volume_id());
      }
    }
    session->hello_done = true;
    std::shared_ptr<Session> replaced = owner_.ReplaceCurrent(session);
    if (replaced) replaced->Cancel();  // the old stream is dead
    owner_.metrics_.agents_connected->Increment();
    spdlog::info("agent connected {}", LogFields()
                                           .Add("node", hello.node_name())
                                           .Add("volume", hello.volume_id())
                                           .Add("agent_version", hello.agent_version())
                                           .Add("principal", session->principal));
    absl::StatusOr<v1::CachingPolicy> policy = owner_.store_.CachingPolicy();
    if (policy.ok()) {
      owner_.SendPolicy(*session, *policy);
    } else {
      spdlog::error("reading the caching policy failed {}",
                    LogFields()
                        .Add("node", session->node_name)
                        .Add("error", policy.status())
                        .Add("next", "the agent keeps its saved policy until the next change"));
    }
    owner_.Dispatch(*session);
    session->ReadNext();
  }

  void StoreUsage(std::vector<Event>& batch, size_t begin, size_t end) {
    std::vector<UsageUpdate> updates;
    updates.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) {
      const v1::UsageReport& report = batch[i].message->usage();
      updates.push_back(
          UsageUpdate{batch[i].session->node_name, *batch[i].session->ReportVolume(report), &report});
    }
    const Clock::TimePoint now = Now();
    absl::Status together = owner_.store_.ApplyUsageBatch(updates, now);
    std::vector<absl::Status> results(updates.size(), together);
    if (!together.ok()) {  // store them one by one to tell whose report fails
      for (size_t i = 0; i < updates.size(); ++i) {
        results[i] = owner_.store_.ApplyUsage(updates[i].node_name, updates[i].volume_id,
                                              *updates[i].report, now);
      }
    }
    const SteadyClock::time_point stored = SteadyClock::now();
    std::set<std::string> changed;
    for (size_t i = begin; i < end; ++i) {
      const v1::UsageReport& report = batch[i].message->usage();
      if (results[i - begin].ok() && (report.full() || report.models_size() > 0)) {
        changed.insert(std::string(updates[i - begin].volume_id));
      }
    }
    if (!changed.empty() && owner_.on_usage_stored_) owner_.on_usage_stored_(changed);
    for (size_t i = begin; i < end; ++i) {
      const std::shared_ptr<Session>& session = batch[i].session;
      owner_.metrics_.usage_reports->Increment();
      owner_.metrics_.report_seconds->Observe(
          std::chrono::duration<double>(stored - batch[i].received).count());
      const absl::Status& status = results[i - begin];
      if (status.ok()) {
        session->ReadNext();
      } else {
        spdlog::error("storing a usage report failed {}",
                      LogFields()
                          .Add("node", session->node_name)
                          .Add("error", status)
                          .Add("next", "closing the stream; the agent reconnects and resyncs"));
        Close(session, ToGrpcStatus(status));
      }
    }
  }

  // The stream of a node that said hello ends: it stops being the node's current stream and,
  // unless a newer stream replaced it, the node is recorded disconnected.
  void Close(const std::shared_ptr<Session>& session, grpc::Status status) {
    const bool current = owner_.RemoveIfCurrent(session);
    {
      std::lock_guard lock(session->claim_mutex);
      session->closed = true;
      if (current) {
        absl::Status disconnected = owner_.store_.RecordDisconnect(session->node_name, Now());
        if (!disconnected.ok()) {
          spdlog::error("recording a disconnect failed {}",
                        LogFields()
                            .Add("node", session->node_name)
                            .Add("error", disconnected)
                            .Add("next", "the node's commands in flight stay sent until a later "
                                         "disconnect is recorded or the coordinator restarts"));
        }
      }
    }
    owner_.metrics_.agents_connected->Decrement();
    spdlog::info("agent disconnected {}", LogFields().Add("node", session->node_name));
    session->FinishWith(std::move(status));
  }

  Clock::TimePoint Now() const { return owner_.clock_.Now(); }

  AgentStreams& owner_;
  std::mutex mutex_;  // guards queue_ and stopping_
  std::condition_variable wake_;
  std::deque<Event> queue_;  // at most one event per open stream
  bool stopping_ = false;
  std::thread thread_;  // last: it starts running in the constructor
};

void AgentStreams::Session::OnReadDone(bool ok) {
  Event event{shared_from_this(), std::nullopt, SteadyClock::now()};
  if (ok) event.message = std::move(incoming_);
  owner_.worker_->Post(std::move(event));
}

AgentStreams::AgentStreams(CoordinatorStore& store, const Clock& clock, AgentStreamMetrics metrics)
    : store_(store), clock_(clock), metrics_(metrics), worker_(std::make_unique<Worker>(*this)) {}

AgentStreams::~AgentStreams() { Stop(); }

AgentStreams::Reactor* AgentStreams::Open(grpc::CallbackServerContext* context,
                                          std::string principal, const absl::Status& refused) {
  auto session = std::make_shared<Session>(*this, context, std::move(principal));
  session->Begin(refused);
  return session.get();  // alive until OnDone through its self_
}

void AgentStreams::OnUsageStored(
    std::function<void(const std::set<std::string>& volume_ids)> listener) {
  on_usage_stored_ = std::move(listener);
}

void AgentStreams::BroadcastPolicy() {
  absl::StatusOr<v1::CachingPolicy> policy = store_.CachingPolicy();
  if (!policy.ok()) {
    spdlog::error("reading the caching policy failed {}",
                  LogFields().Add("error", policy.status()).Add("next", "agents keep the previous one"));
    return;
  }
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(sessions_mutex_);
    for (const auto& [node, session] : current_) sessions.push_back(session);
  }
  for (const auto& session : sessions) SendPolicy(*session, *policy);
}

void AgentStreams::DispatchAll() {
  std::map<std::string, std::shared_ptr<Session>> per_volume;
  {
    std::lock_guard lock(sessions_mutex_);
    for (const auto& [node, session] : current_) per_volume.emplace(session->volume_id, session);
  }
  for (const auto& [volume, session] : per_volume) Dispatch(*session);
}

std::set<std::string> AgentStreams::ConnectedVolumes(std::string_view volume_id) {
  std::set<std::string> volumes;
  std::lock_guard lock(sessions_mutex_);
  for (const auto& [node, session] : current_) {
    if (volume_id.empty() || session->volume_id == volume_id) volumes.insert(session->volume_id);
  }
  return volumes;
}

void AgentStreams::CancelAll() {
  std::lock_guard lock(sessions_mutex_);
  refusing_ = true;
  // A session in open_ is alive: its OnDone waits for this lock before letting go of itself.
  for (Session* session : open_) session->Cancel();
}

void AgentStreams::Stop() {
  if (worker_) worker_->Stop();
}

void AgentStreams::Forget(Session* session) {
  std::lock_guard lock(sessions_mutex_);
  open_.erase(session);
}

std::shared_ptr<AgentStreams::Session> AgentStreams::Current(const std::string& node_name) {
  std::lock_guard lock(sessions_mutex_);
  auto found = current_.find(node_name);
  return found == current_.end() ? nullptr : found->second;
}

std::shared_ptr<AgentStreams::Session> AgentStreams::ReplaceCurrent(
    const std::shared_ptr<Session>& session) {
  std::lock_guard lock(sessions_mutex_);
  if (refusing_) session->Cancel();  // said hello while the coordinator began to shut down
  std::shared_ptr<Session>& slot = current_[session->node_name];
  std::shared_ptr<Session> previous = std::move(slot);
  slot = session;
  return previous;
}

bool AgentStreams::RemoveIfCurrent(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(sessions_mutex_);
  auto found = current_.find(session->node_name);
  if (found == current_.end() || found->second != session) return false;
  current_.erase(found);
  return true;
}

void AgentStreams::SendPolicy(Session& session, const v1::CachingPolicy& policy) {
  v1::CoordinatorMessage message;
  *message.mutable_policy() = policy;
  session.Send(message);
}

void AgentStreams::Dispatch(Session& session) {
  std::lock_guard lock(session.claim_mutex);
  if (session.closed) return;
  absl::StatusOr<std::vector<v1::Command>> commands =
      store_.ClaimPending(session.volume_id, session.node_name, clock_.Now());
  if (!commands.ok()) {
    spdlog::error("dispatching commands failed {}",
                  LogFields()
                      .Add("node", session.node_name)
                      .Add("error", commands.status())
                      .Add("next", "the commands stay pending"));
    return;
  }
  for (const v1::Command& command : *commands) {
    v1::CoordinatorMessage message;
    *message.mutable_command() = command;
    if (!session.Send(message)) break;  // the stream is ending; its disconnect re-queues them
  }
}

}  // namespace modelcache
