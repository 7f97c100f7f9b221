#pragma once
// The lease RPCs of coordinator.proto, which agents and pods call: in-use leases (Acquire/
// Renew/ReleaseLease: a live one keeps the model from every purge on its volume, or on every
// volume) kept in the store, and fill leases (cross-node single flight, fill_leases.h) kept in
// memory. Each method is one RPC's body, after authentication (coordinator_service.h).
// Thread-safe.
#include <functional>

#include "absl/status/status.h"
#include "common/clock.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

class CoordinatorStore;
class FillLeaseTable;

class LeaseService {
 public:
  // Both borrowed objects and `clock` must outlive the service.
  LeaseService(CoordinatorStore& store, FillLeaseTable& fill_leases, const Clock& clock)
      : store_(store), fill_leases_(fill_leases), clock_(clock) {}

  // Acquire creates or extends; with `renew_only`, NOT_FOUND unless a lease for the same key
  // is still live. INVALID_ARGUMENT for a bad name or version, or an empty holder.
  absl::Status PutInUseLease(const v1::LeaseRequest& request, bool renew_only, v1::Lease* response);
  absl::Status ReleaseInUseLease(const v1::LeaseRequest& request, v1::Lease* response);

  absl::Status AcquireFillLease(const v1::FillLeaseRequest& request, v1::FillLease* response);
  absl::Status RenewFillLease(const v1::FillLeaseRequest& request, v1::FillLease* response);
  absl::Status ReleaseFillLease(const v1::FillLeaseRequest& request, v1::FillLease* response);
  // Waits for a change (or wait_ms) unless `cancelled()` turns true.
  absl::Status WatchFillLease(const v1::WatchFillLeaseRequest& request,
                              const std::function<bool()>& cancelled, v1::FillLease* response);

 private:
  CoordinatorStore& store_;
  FillLeaseTable& fill_leases_;
  const Clock& clock_;
};

}  // namespace modelcache
