#pragma once
// Pod leases, the agent's table of which pods (holders) use which cached model right now. A lease is
// taken by an Ensure that names a holder and renewed or released through the agent's Hold
// RPC (`modelcachectl hold`). A leased model is never purged from this volume: the agent
// reports its live leases to the coordinator (whose purge plan then skips the model on the
// whole volume) and re-checks them before it executes a purge command.
//
// Leases live in memory only: an agent restart forgets them, and the holders' next renewal
// (`hold --every`) takes them again. Thread-safe; time comes from the injected clock, and a
// lease whose expiry has passed counts as gone (expired entries are dropped on the next call).
//
// "Lease" alone is ambiguous in this code base; there are three kinds, each with its name:
// pod leases (here), fill leases (cross-node single flight, agent/single_flight/) and the
// coordinator's in-use leases (its AcquireLease/RenewLease/ReleaseLease RPCs).
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "common/clock.h"

namespace modelcache {

class PodLeaseTable {
 public:
  using ModelKey = std::pair<std::string, std::string>;  // name, version

  // `clock` must outlive the table. `default_ttl` (> 0) applies when a call passes 0.
  PodLeaseTable(const Clock& clock, std::chrono::seconds default_ttl);
  PodLeaseTable(const PodLeaseTable&) = delete;
  PodLeaseTable& operator=(const PodLeaseTable&) = delete;

  // Creates or extends `holder`'s lease on name@version so that it ends `ttl` from now
  // (`ttl` 0: the default). Returns the new expiry.
  Clock::TimePoint Hold(std::string_view name, std::string_view version, std::string_view holder,
                        std::chrono::seconds ttl = std::chrono::seconds(0));

  // A lease with no expiry, for a holder whose end the agent learns by itself (a pod it
  // watches: agent/pod_leases/); it lasts until Release.
  void HoldUntilReleased(std::string_view name, std::string_view version, std::string_view holder);

  // Ends `holder`'s lease. False when it held none (or it had expired already).
  bool Release(std::string_view name, std::string_view version, std::string_view holder);

  // True while at least one holder's lease on name@version is live.
  bool is_leased(std::string_view name, std::string_view version) const;
  // Live leases on name@version (one per holder).
  uint32_t LiveLeases(std::string_view name, std::string_view version) const;
  // Live leases per model; models without one are absent.
  std::map<ModelKey, uint32_t> LiveByModel() const;
  // The holders of the live leases per model, sorted; models without one are absent.
  std::map<ModelKey, std::vector<std::string>> HoldersByModel() const;
  // When each model was last leased: while a lease is live, when the latest one was taken or
  // renewed (stable between two usage reports); else when its last lease ended (released or
  // expired). A model never leased since the agent started is absent. The
  // agent reports it as the model's last access, so "unused" means "no pod used it".
  std::map<ModelKey, Clock::TimePoint> LastLeasedByModel() const;
  // Every live lease, for the `live leases` gauge.
  size_t LiveCount() const;

  std::chrono::seconds DefaultTtl() const { return default_ttl_; }

 private:
  using LeaseKey = std::tuple<std::string, std::string, std::string>;  // name, version, holder
  void DropExpiredLocked() const;

  const Clock& clock_;
  const std::chrono::seconds default_ttl_;
  mutable std::mutex mutex_;
  // Expired entries are erased lazily, also from const readers, hence mutable.
  mutable std::map<LeaseKey, Clock::TimePoint> expiry_;  // guarded by mutex_
  // Per model, guarded by mutex_: when a lease was last taken or renewed, and when its last
  // lease ended (released or expired).
  std::map<ModelKey, Clock::TimePoint> held_at_;
  mutable std::map<ModelKey, Clock::TimePoint> ended_;
};

}  // namespace modelcache
