#pragma once
// Cross-node single flight: before filling name@version, an agent enters the gate; exactly one
// agent of the shared volume gets the turn to fill, the others wait for the model to appear.
//
// Who fills is decided by two leases, taken in this order:
//   1. the coordinator's fill lease for (volume, name, version), when a coordinator is
//      configured and answers (fencing, progress for the waiters, prompt news of the publish);
//   2. the lock file on the volume (agent/store/fill_lock.h), always. It is what keeps
//      fillers apart when some agents cannot reach the coordinator, so a coordinator grant
//      whose lock file is held elsewhere is released again.
// The holder renews both while its fill makes progress (FillGateOptions::progress_window) and
// checks the lock file right before publishing (a filler that lost its lock never publishes;
// its staging stays for the one that took over, which resumes from the fill journal). A coordinator lease the coordinator forgot (restart) or handed
// on is taken again when free; only the lock file decides that a holder lost the fill. A lease
// whose holder died expires after the ttl and a waiter takes it.
// Waiters poll the manifest, watch the coordinator's lease (or read the fill journal for
// progress when the coordinator is away) and try to take over, every poll interval.
// The lock file names the source its holder fills from: a waiter that asked for another
// source (common/uri.h SameSource) is told so at once (FAILED_PRECONDITION naming both), as it
// will not be served the holder's model anyway (agent/hit_decision.h).
//
// Each model at the gate has a session thread of its own for the blocking work (file I/O on
// the volume, coordinator calls); callbacks are posted to the EventLoop.
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "agent/store/layout.h"
#include "common/clock.h"
#include "modelcache/v1/agent.pb.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

class EventLoop;
class FillLeaseClient;

struct FillGateOptions {
  std::filesystem::path cache_root;
  std::string node_name;
  std::string volume_id;  // the coordinator's lease key; unused without a coordinator
  std::chrono::milliseconds lease_ttl{30'000};
  std::chrono::milliseconds poll_interval{1'000};
  // A waiter gives up (DEADLINE_EXCEEDED) after this long without the model.
  std::chrono::milliseconds wait_timeout{std::chrono::hours(2)};
  // The holder renews only while its fill lands bytes within this window (agent/
  // fill_lease_renewal.h): a stalled filler lets its leases lapse and leaves the gate (on_lost).
  // Progress is what ReportProgress says (whole chunks). The agent sets fillLease.progressWindow.
  std::chrono::milliseconds progress_window{300'000};
};

// Errors that another agent's attempt would meet too: the origin has no such model or file
// (NOT_FOUND), refuses us (PERMISSION_DENIED, UNAUTHENTICATED), the source is malformed
// (INVALID_ARGUMENT) or its content does not match its listing (DATA_LOSS).
bool IsPermanentFillError(const absl::Status& status);

class FillGate {
 public:
  // Run on the loop thread, only while the ticket lives. Exactly one of on_turn,
  // on_published or on_error ends the wait; on_lost may follow on_turn.
  struct Callbacks {
    std::function<void()> on_turn;  // this agent holds the leases: fill now
    std::function<void(v1::Manifest)> on_published;  // the model is on the volume
    std::function<void(absl::Status)> on_error;
    std::function<void(const v1::EnsureProgress&)> on_progress;  // another agent's fill
    // A renew found the lease taken over, or the fill made no progress for progress_window
    // and the lease lapsed.
    std::function<void()> on_lost;
  };

  class Session;

  // One agent's place at the gate for one model. Create and destroy on the loop thread;
  // destroying it leaves the gate (a held lease is released in the background).
  class Ticket {
   public:
    explicit Ticket(std::shared_ptr<Session> session);
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

    // The holder's progress, sent with the next renew; growing bytes_done keeps the lease
    // renewed. Any thread.
    void ReportProgress(uint64_t bytes_done, uint64_t bytes_total);
    // A blocking check for FillRequest::before_publish (also renews): OK while the lock file
    // is ours, ABORTED saying who took it over. Any thread, even after the ticket died.
    std::function<absl::Status()> PublishCheck() const;
    // The fill ended; the leases are released (published: the waiters read the manifest).
    // A permanent `error` (IsPermanentFillError) is published with the coordinator lease:
    // agents waiting on this fill answer with it instead of each fetching again.
    void Finish(bool published, absl::Status error = absl::OkStatus());
    // True once a renew or the publish check found the lease lost.
    bool Lost() const;

   private:
    std::shared_ptr<Session> session_;
  };

  // `loop`, `clock` and `coordinator` (null: lock files only) must outlive the gate.
  FillGate(EventLoop& loop, const Clock& clock, FillGateOptions options,
           FillLeaseClient* coordinator);
  // Stops every session and waits for them (they release what they hold). Not on the loop.
  ~FillGate();
  FillGate(const FillGate&) = delete;
  FillGate& operator=(const FillGate&) = delete;

  // Starts a session for name@version (valid names), to be filled from `source` (written into
  // the lock file when this agent fills). Loop thread.
  std::unique_ptr<Ticket> Enter(const std::string& name, const std::string& version,
                                const std::string& source, Callbacks callbacks);

 private:
  EventLoop& loop_;
  const Clock& clock_;
  const FillGateOptions options_;
  FillLeaseClient* const coordinator_;
  std::string holder_id_;  // "<node>/<random>": this process in the coordinator's leases
  std::mutex mutex_;
  std::list<std::shared_ptr<Session>> sessions_;  // guarded by mutex_
};

}  // namespace modelcache
