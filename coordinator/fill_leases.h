#pragma once
// Fill leases: which agent fills (volume, model, version) now, so that agents sharing one
// cache volume download a model once. In memory only: a restarted coordinator starts empty
// and agents acquire again (the lock files on the volume keep fillers apart meanwhile).
// Thread-safe; Watch blocks the calling (gRPC handler) thread.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

class FillLeaseTable {
 public:
  // `clock` must outlive the table.
  explicit FillLeaseTable(const Clock& clock);

  // Grants the lease when it is free, published, failed, expired, or already the caller's (then it is
  // extended, same fencing); otherwise granted=false with the holder and its progress. Every
  // grant to a new holder takes the next fencing number (one counter for all leases, so numbers
  // never go back even after a lease is forgotten). A FAILED lease whose fencing is the
  // request's waited_fencing is not granted but returned (the waiter answers with its error).
  // INVALID_ARGUMENT for a bad request.
  absl::StatusOr<v1::FillLease> Acquire(const v1::FillLeaseRequest& request);

  // Extends the caller's lease to now + ttl and records bytes_done/bytes_total. A lease that
  // expired but was not taken over is still the caller's. ABORTED naming the current state
  // when the holder or fencing differs or the lease was released.
  absl::StatusOr<v1::FillLease> Renew(const v1::FillLeaseRequest& request);

  // Ends the caller's lease: state PUBLISHED when request.published, else FAILED with the
  // request's error when error_code is set, else FREE. ABORTED as
  // Renew (a release by a holder that lost the lease changes nothing).
  absl::StatusOr<v1::FillLease> Release(const v1::FillLeaseRequest& request);

  // The lease now, if its change counter is above after_change; else waits (at most wait_ms,
  // capped at 30 s) until it changes or expires, or `cancelled` returns true (checked a few
  // times a second), or Shutdown. A never-seen lease is FREE with change 0.
  absl::StatusOr<v1::FillLease> Watch(const v1::WatchFillLeaseRequest& request,
                                      const std::function<bool()>& cancelled);

  // Wakes every Watch, which then answer at once. Idempotent.
  void Shutdown();

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // volume, name, version
  struct Entry {
    v1::FillLease lease;  // state FREE, HELD, PUBLISHED or FAILED (EXPIRED is computed)
    Clock::TimePoint updated;
  };

  v1::FillLease Snapshot(const Entry& entry, Clock::TimePoint now) const;
  void Changed(Entry& entry);
  void ForgetOld(Clock::TimePoint now);

  const Clock& clock_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<Key, Entry> entries_;  // guarded by mutex_
  uint64_t next_fencing_ = 1;     // guarded by mutex_
  uint64_t next_change_ = 1;      // guarded by mutex_
  bool shutting_down_ = false;    // guarded by mutex_
};

}  // namespace modelcache
