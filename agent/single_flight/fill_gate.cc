#include "agent/single_flight/fill_gate.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <optional>
#include <thread>

#include "agent/hit_decision.h"
#include "agent/loop/event_loop.h"
#include "agent/single_flight/fill_lease_client.h"
#include "agent/single_flight/fill_lease_renewal.h"
#include "agent/store/fill_lock.h"
#include "agent/store/manifest.h"
#include "common/grpc_status.h"
#include "common/log_fields.h"
#include "common/random_id.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "common/uri.h"
#include "spdlog/spdlog.h"

namespace modelcache {

class FillGate::Session : public std::enable_shared_from_this<FillGate::Session> {
 public:
  Session(EventLoop& loop, const Clock& clock, const FillGateOptions& options,
          FillLeaseClient* coordinator, std::string holder_id, std::string name,
          std::string version, std::string source, Callbacks callbacks)
      : loop_(loop),
        clock_(clock),
        options_(options),
        coordinator_(coordinator),
        holder_id_(std::move(holder_id)),
        name_(std::move(name)),
        version_(std::move(version)),
        source_(std::move(source)),
        layout_(options.cache_root),
        locks_(layout_, options.node_name, clock, options.lease_ttl),
        callbacks_(std::move(callbacks)) {}

  void Start() {
    thread_ = std::thread([self = shared_from_this()] { self->Run(); });
  }
  void Stop() {
    std::lock_guard lock(mutex_);
    stop_ = true;
    wake_.notify_all();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  bool Done() const { return done_; }

  void Finish(bool published, absl::Status error) {
    std::lock_guard lock(mutex_);
    finished_ = true;
    published_ = published;
    error_ = std::move(error);
    wake_.notify_all();
  }
  void ReportProgress(uint64_t bytes_done, uint64_t bytes_total) {
    std::lock_guard lock(mutex_);
    if (bytes_done > bytes_done_) last_progress_ = clock_.Now();
    bytes_done_ = bytes_done;
    bytes_total_ = bytes_total;
  }
  bool Lost() const { return lost_; }
  absl::Status CheckHeld();

  // Loop thread only.
  bool cancelled_ = false;

 private:
  void Run();
  // true: both leases are ours. false: someone else fills. Errors other than contention.
  absl::StatusOr<bool> TryTake();
  // FAILED_PRECONDITION when the lock file's holder fills from another source than ours.
  absl::Status CheckHolderSource();
  void Hold();
  // Whether Hold renews now, from the fill's progress (agent/single_flight/fill_lease_renewal.h).
  FillLeaseRenewal Renewal();
  void Wait();
  // True (and holder_failed_ set) when `lease` is the failed fill this agent waited on.
  bool HolderFailed(const v1::FillLease& lease);
  // `error`: the fill's status when it failed; a permanent one goes to the coordinator.
  void ReleaseHeld(bool published, const absl::Status& error);
  v1::FillLeaseRequest LeaseRequest() const;
  // Sleeps up to `duration`; false once stopped.
  bool SleepFor(std::chrono::milliseconds duration);
  bool Stopping() {
    std::lock_guard lock(mutex_);
    return stop_;
  }
  void SendProgress(uint64_t bytes_done, uint64_t bytes_total, uint32_t files_total);
  void Post(std::function<void(Callbacks&)> call) {
    loop_.Post([self = shared_from_this(), call = std::move(call)] {
      if (!self->cancelled_) call(self->callbacks_);
    });
  }

  EventLoop& loop_;
  const Clock& clock_;
  const FillGateOptions options_;
  FillLeaseClient* const coordinator_;
  const std::string holder_id_;
  const std::string name_;
  const std::string version_;
  const std::string source_;  // what this agent's callers asked for
  const CacheLayout layout_;
  const FillLocks locks_;
  Callbacks callbacks_;  // loop thread only
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<bool> lost_{false};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;             // guarded by mutex_
  bool finished_ = false;         // guarded by mutex_
  bool published_ = false;        // guarded by mutex_
  absl::Status error_;            // guarded by mutex_: how the fill failed (Finish)
  uint64_t bytes_done_ = 0;       // guarded by mutex_
  uint64_t bytes_total_ = 0;      // guarded by mutex_
  // When the fill last landed bytes, or took the turn (before its first bytes).
  Clock::TimePoint last_progress_;  // guarded by mutex_
  std::optional<FillLock> lock_;  // guarded by mutex_: ours while we fill
  std::optional<uint64_t> fencing_;  // guarded by mutex_: the coordinator lease we hold

  // Session thread only.
  bool coordinator_up_ = true;
  uint64_t watch_change_ = 0;
  v1::FillLease last_lease_;
  bool said_waiting_ = false;
  // The coordinator lease this agent waits on (fencing of a HELD lease it saw; 0: none), and
  // that holder's permanent failure once its release says so: this agent answers with it.
  uint64_t waited_fencing_ = 0;
  std::optional<absl::Status> holder_failed_;
  uint64_t sent_bytes_ = UINT64_MAX;
  Clock::TimePoint sent_at_;
};

v1::FillLeaseRequest FillGate::Session::LeaseRequest() const {
  v1::FillLeaseRequest request;
  request.set_volume_id(options_.volume_id);
  request.set_name(name_);
  request.set_version(version_);
  request.set_holder(holder_id_);
  request.set_ttl_ms(static_cast<uint32_t>(options_.lease_ttl.count()));
  return request;
}

bool FillGate::Session::SleepFor(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return !clock_.WaitUntil(lock, wake_, clock_.Now() + duration, [this] { return stop_; });
}

void FillGate::Session::Run() {
  const Clock::TimePoint deadline = clock_.Now() + options_.wait_timeout;
  while (!Stopping()) {
    absl::StatusOr<v1::Manifest> manifest = ReadManifest(layout_.ManifestPath(name_, version_));
    if (manifest.ok()) {
      Post([manifest = *std::move(manifest)](Callbacks& callbacks) mutable {
        callbacks.on_published(std::move(manifest));
      });
      break;
    }
    absl::StatusOr<bool> taken = TryTake();
    if (!taken.ok()) {
      Post([status = taken.status()](Callbacks& callbacks) { callbacks.on_error(status); });
      break;
    }
    if (*taken) {
      Post([](Callbacks& callbacks) { callbacks.on_turn(); });
      Hold();
      break;
    }
    if (absl::Status same = CheckHolderSource(); !same.ok()) {
      Post([same](Callbacks& callbacks) { callbacks.on_error(same); });
      break;
    }
    if (clock_.Now() > deadline) {
      Post([this](Callbacks& callbacks) {
        callbacks.on_error(absl::DeadlineExceededError(
            fmt::format("model {}@{}: another agent has been filling it for longer than {} s",
                        name_, version_, options_.wait_timeout.count() / 1000)));
      });
      break;
    }
    if (!holder_failed_) Wait();
    if (holder_failed_) {
      Post([status = *holder_failed_](Callbacks& callbacks) { callbacks.on_error(status); });
      break;
    }
  }
  done_ = true;
}

absl::Status FillGate::Session::CheckHolderSource() {
  absl::StatusOr<FillLockHolder> holder = locks_.ReadHolder(name_, version_);
  // No lock file (the coordinator's holder has not written it yet, or it was just released)
  // or one of an older agent without a source line: the published manifest is checked.
  if (!holder.ok() || holder->source.empty() || SameSource(holder->source, source_)) {
    return absl::OkStatus();
  }
  return OtherSourceError(name_, version_, SourceConflict::kFillingOnAnotherAgent, holder->source,
                          source_, holder->node);
}

bool FillGate::Session::HolderFailed(const v1::FillLease& lease) {
  if (lease.state() != v1::FillLease::FAILED || waited_fencing_ == 0 ||
      lease.fencing() != waited_fencing_) {
    return false;
  }
  // The fill we waited for failed for good: answer with its error rather than fetch again
  // (the origin would answer us the same). A later Ensure may try again.
  holder_failed_ = StatusFromCode(
      lease.error_code(),
      fmt::format("{} (the fill by {} on this volume, which this agent waited for)",
                  lease.error_message(), lease.holder()));
  return true;
}

absl::StatusOr<bool> FillGate::Session::TryTake() {
  std::optional<v1::FillLease> granted;
  v1::FillLeaseRequest request = LeaseRequest();
  if (coordinator_ != nullptr) {
    v1::FillLeaseRequest acquire = request;
    acquire.set_waited_fencing(waited_fencing_);
    absl::StatusOr<v1::FillLease> lease = coordinator_->Acquire(acquire);
    if (lease.ok()) {
      coordinator_up_ = true;
      last_lease_ = *lease;
      if (HolderFailed(*lease)) return false;  // Run answers with its error
      if (!lease->granted()) {
        if (lease->state() == v1::FillLease::HELD) waited_fencing_ = lease->fencing();
        if (!said_waiting_) {
          spdlog::info("fill {}@{}: {} fills it (coordinator lease, fencing {}), waiting", name_,
                       version_, lease->holder(), lease->fencing());
          said_waiting_ = true;
        }
        return false;
      }
      granted = *lease;
    } else {
      if (coordinator_up_) {
        spdlog::warn("no coordinator lease {}",
                     LogFields()
                         .Add("model", name_)
                         .Add("version", version_)
                         .Add("error", lease.status())
                         .Add("next", "the volume's lock file alone decides who fills"));
      }
      coordinator_up_ = false;
    }
  }
  absl::StatusOr<FillLock> lock = locks_.TryAcquire(name_, version_, source_);
  if (lock.ok()) {
    spdlog::info("fill {}@{}: this agent fills it (lock fencing {}{})", name_, version_,
                 lock->holder.fencing,
                 granted ? fmt::format(", coordinator fencing {}", granted->fencing())
                         : std::string(", no coordinator lease"));
    std::lock_guard guard(mutex_);
    lock_ = *std::move(lock);
    if (granted) fencing_ = granted->fencing();
    last_progress_ = clock_.Now();
    return true;
  }
  if (granted) {
    // Someone who could not reach the coordinator holds the lock file.
    request.set_fencing(granted->fencing());
    (void)coordinator_->Release(request);
  }
  if (absl::IsAlreadyExists(lock.status()) || absl::IsAborted(lock.status())) {
    if (!said_waiting_) {
      spdlog::info("fill {}@{}: waiting: {}", name_, version_, lock.status());
      said_waiting_ = true;
    }
    return false;
  }
  return lock.status();
}

void FillGate::Session::SendProgress(uint64_t bytes_done, uint64_t bytes_total,
                                     uint32_t files_total) {
  if (bytes_total == 0 || bytes_done == sent_bytes_) return;
  const Clock::TimePoint now = clock_.Now();
  v1::EnsureProgress progress;
  progress.set_state(v1::EnsureProgress::FILLING);
  progress.set_bytes_done(bytes_done);
  progress.set_bytes_total(bytes_total);
  progress.set_files_total(files_total);
  if (sent_bytes_ != UINT64_MAX && bytes_done > sent_bytes_) {
    double seconds = std::chrono::duration<double>(now - sent_at_).count();
    if (seconds > 0) {
      double rate = static_cast<double>(bytes_done - sent_bytes_) / seconds;
      progress.set_bytes_per_second(rate);
      progress.set_eta_seconds(static_cast<double>(bytes_total - bytes_done) / rate);
    }
  }
  sent_bytes_ = bytes_done;
  sent_at_ = now;
  Post([progress](Callbacks& callbacks) {
    if (callbacks.on_progress) callbacks.on_progress(progress);
  });
}

void FillGate::Session::Wait() {
  if (coordinator_ != nullptr && coordinator_up_) {
    v1::WatchFillLeaseRequest watch;
    watch.set_volume_id(options_.volume_id);
    watch.set_name(name_);
    watch.set_version(version_);
    watch.set_after_change(std::max(watch_change_, last_lease_.change()));
    watch.set_wait_ms(static_cast<uint32_t>(options_.poll_interval.count()));
    absl::StatusOr<v1::FillLease> lease = coordinator_->Watch(watch);
    if (lease.ok()) {
      watch_change_ = lease->change();
      last_lease_ = *lease;
      if (HolderFailed(*lease)) return;
      if (lease->state() == v1::FillLease::HELD) {
        waited_fencing_ = lease->fencing();
        SendProgress(lease->bytes_done(), lease->bytes_total(), 0);
        return;
      }
      // Published, released or expired: look again soon, but do not spin while a lock file
      // lingers a little longer than the coordinator's lease.
      SleepFor(std::max(options_.poll_interval / 8, std::chrono::milliseconds(20)));
      return;
    }
    coordinator_up_ = false;
  }
  // Without the coordinator the filler's journal tells its progress.
  absl::StatusOr<v1::FillJournal> journal = ReadJournal(layout_.JournalPath(name_, version_));
  if (journal.ok()) {
    uint64_t done = 0;
    uint64_t total = 0;
    for (const auto& file : journal->files()) {
      done += file.committed_bytes();
      total += file.size();
    }
    SendProgress(done, total, static_cast<uint32_t>(journal->files_size()));
  }
  SleepFor(options_.poll_interval);
  // Try the coordinator again next round.
  coordinator_up_ = true;
}

FillLeaseRenewal FillGate::Session::Renewal() {
  std::lock_guard lock(mutex_);
  if (!lock_) return FillLeaseRenewal::kRenew;  // CheckHeld says what is wrong
  return DecideFillLeaseRenewal(last_progress_, lock_->holder.expires, clock_.Now(),
                                options_.progress_window);
}

void FillGate::Session::Hold() {
  auto renew_every = std::min(options_.lease_ttl / 3, options_.poll_interval);
  bool said_lapsing = false;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (clock_.WaitUntil(lock, wake_, clock_.Now() + renew_every,
                           [this] { return stop_ || finished_; })) {
        break;
      }
    }
    FillLeaseRenewal renewal = Renewal();
    if (renewal == FillLeaseRenewal::kLetLapse) {
      if (!said_lapsing) {
        said_lapsing = true;
        spdlog::warn("fill lease not renewed {}",
                     LogFields()
                         .Add("model", name_ + "@" + version_)
                         .Add("error", fmt::format("no bytes landed for {} ms",
                                                   options_.progress_window.count()))
                         .Add("next", "the lease lapses unless the fill moves again; another "
                                      "agent may take the fill over"));
      }
      continue;
    }
    if (renewal == FillLeaseRenewal::kLapsed) {
      spdlog::warn("fill lease lapsed {}",
                   LogFields()
                       .Add("model", name_ + "@" + version_)
                       .Add("error", "the fill made no progress until the lease expired")
                       .Add("next", "this fill stops and waits at the gate like any agent; "
                                    "whoever takes the lease resumes from the staging"));
      lost_ = true;
      Post([](Callbacks& callbacks) {
        if (callbacks.on_lost) callbacks.on_lost();
      });
      // Expired: another agent may hold it already, so nothing is released.
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || finished_; });
      return;
    }
    said_lapsing = false;
    absl::Status held = CheckHeld();
    if (!held.ok() && lost_) {
      spdlog::warn("fill lease lost {}",
                   LogFields()
                       .Add("model", name_)
                       .Add("version", version_)
                       .Add("error", held)
                       .Add("next", "fetching stops; staging kept; waiting for the new filler"));
      Post([](Callbacks& callbacks) {
        if (callbacks.on_lost) callbacks.on_lost();
      });
      // Not ours any more: nothing to release.
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || finished_; });
      return;
    }
    if (!held.ok()) {
      spdlog::warn("fill lease not renewed {}",
                   LogFields()
                       .Add("model", name_)
                       .Add("version", version_)
                       .Add("error", held)
                       .Add("next", fmt::format("the fill goes on; renewal retried in {} ms",
                                                renew_every.count())));
    }
  }
  bool published;
  absl::Status error;
  {
    std::lock_guard lock(mutex_);
    published = published_;
    error = error_;
  }
  if (!lost_) ReleaseHeld(published, error);
}

absl::Status FillGate::Session::CheckHeld() {
  std::optional<FillLock> lock;
  std::optional<uint64_t> fencing;
  v1::FillLeaseRequest request = LeaseRequest();
  {
    std::lock_guard guard(mutex_);
    lock = lock_;
    fencing = fencing_;
    request.set_bytes_done(bytes_done_);
    request.set_bytes_total(bytes_total_);
  }
  if (!lock) return absl::FailedPreconditionError("fill lease: not held");
  // The lock file decides: Renew checks it is ours and extends it.
  absl::Status renewed = locks_.Renew(*lock);
  if (absl::IsAborted(renewed)) {
    lost_ = true;
    return renewed;
  }
  RETURN_IF_ERROR(renewed);
  {
    std::lock_guard guard(mutex_);
    if (lock_ && lock_->holder.token == lock->holder.token) {
      lock_->holder.expires = lock->holder.expires;
    }
  }
  // Then the coordinator's lease, which may be slow to answer: the lock is renewed already.
  if (coordinator_ != nullptr) {
    if (fencing) {
      request.set_fencing(*fencing);
      absl::StatusOr<v1::FillLease> lease = coordinator_->Renew(request);
      if (absl::IsAborted(lease.status())) {
        // The coordinator restarted (and forgot the lease) or handed it on while it could not
        // hear us. The lock file decides whether we still fill; take the lease again below.
        spdlog::warn("coordinator fill lease lost {}",
                     LogFields()
                         .Add("model", name_)
                         .Add("version", version_)
                         .Add("error", lease.status())
                         .Add("next", "the lock file decides; the coordinator lease is taken "
                                      "again if free"));
        fencing.reset();
        std::lock_guard guard(mutex_);
        fencing_.reset();
      }
    }
    if (!fencing) {
      // No coordinator lease (it was away when we took the lock, or forgot us): take it now
      // if it is free, so that waiters learn our progress.
      absl::StatusOr<v1::FillLease> lease = coordinator_->Acquire(request);
      if (lease.ok() && lease->granted()) {
        std::lock_guard guard(mutex_);
        fencing_ = lease->fencing();
      }
    }
  }
  // Right before publishing, after the coordinator calls: still ours and not expired?
  absl::Status held = locks_.CheckHeld(*lock);
  if (absl::IsAborted(held)) lost_ = true;
  return held;
}

void FillGate::Session::ReleaseHeld(bool published, const absl::Status& error) {
  std::optional<FillLock> lock;
  std::optional<uint64_t> fencing;
  {
    std::lock_guard guard(mutex_);
    lock = std::exchange(lock_, std::nullopt);
    fencing = std::exchange(fencing_, std::nullopt);
  }
  // The lock file first: the coordinator's news wakes the waiters, who then find it free.
  if (lock) {
    absl::Status released = locks_.Release(*lock);
    if (!released.ok()) {
      spdlog::warn("fill lock not released {}",
                   LogFields()
                       .Add("model", name_)
                       .Add("version", version_)
                       .Add("error", released)
                       .Add("next", "waiters see the manifest if published, else take the lock "
                                    "once it expires"));
    }
  }
  if (fencing && coordinator_ != nullptr) {
    v1::FillLeaseRequest request = LeaseRequest();
    request.set_fencing(*fencing);
    request.set_published(published);
    if (!published && IsPermanentFillError(error)) {
      request.set_error_code(static_cast<int32_t>(error.code()));
      request.set_error_message(std::string(error.message()));
    }
    absl::StatusOr<v1::FillLease> released = coordinator_->Release(request);
    if (!released.ok()) {
      spdlog::warn("coordinator fill lease not released {}",
                   LogFields()
                       .Add("model", name_)
                       .Add("version", version_)
                       .Add("error", released.status())
                       .Add("next", "waiters see the manifest if published, else take over "
                                    "once the lease expires"));
    }
  }
}

bool IsPermanentFillError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

FillGate::Ticket::Ticket(std::shared_ptr<Session> session) : session_(std::move(session)) {}

FillGate::Ticket::~Ticket() {
  session_->cancelled_ = true;
  session_->Stop();
}

void FillGate::Ticket::ReportProgress(uint64_t bytes_done, uint64_t bytes_total) {
  session_->ReportProgress(bytes_done, bytes_total);
}

std::function<absl::Status()> FillGate::Ticket::PublishCheck() const {
  return [session = session_] { return session->CheckHeld(); };
}

void FillGate::Ticket::Finish(bool published, absl::Status error) {
  session_->Finish(published, std::move(error));
}

bool FillGate::Ticket::Lost() const { return session_->Lost(); }

FillGate::FillGate(EventLoop& loop, const Clock& clock, FillGateOptions options,
                   FillLeaseClient* coordinator)
    : loop_(loop),
      clock_(clock),
      options_(std::move(options)),
      coordinator_(coordinator),
      holder_id_(fmt::format("{}/{}", options_.node_name, RandomHexId128().substr(0, 12))) {}

FillGate::~FillGate() {
  std::list<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(mutex_);
    sessions.swap(sessions_);
  }
  for (auto& session : sessions) session->Stop();
  for (auto& session : sessions) session->Join();
}

std::unique_ptr<FillGate::Ticket> FillGate::Enter(const std::string& name,
                                                  const std::string& version,
                                                  const std::string& source, Callbacks callbacks) {
  auto session = std::make_shared<Session>(loop_, clock_, options_, coordinator_, holder_id_, name,
                                           version, source, std::move(callbacks));
  {
    std::lock_guard lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if ((*it)->Done()) {
        (*it)->Join();
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
    sessions_.push_back(session);
  }
  session->Start();
  return std::make_unique<Ticket>(std::move(session));
}

}  // namespace modelcache
