#pragma once
// What agents and pods call (coordinator.proto): in-use leases (Acquire/Renew/ReleaseLease:
// a live one keeps the model from every purge on its volume, or on every volume) kept in the
// store; the live leases of a volume (for an agent's cleanup); room on demand (a fill that
// does not fit); fill leases (cross-node single flight, fill_leases.h) kept in memory. The
// agents' streams are agent_stream.h. Each method is one RPC's body, after authentication
// (coordinator_service.h). Thread-safe.
#include <chrono>
#include <functional>

#include "absl/status/status.h"
#include "common/clock.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

class CoordinatorStore;
class FillLeaseTable;
class RoomOnDemand;

class AgentFacingService {
 public:
  // Everything borrowed must outlive the service.
  AgentFacingService(CoordinatorStore& store, FillLeaseTable& fill_leases, RoomOnDemand& room,
                     const Clock& clock)
      : store_(store), fill_leases_(fill_leases), room_(room), clock_(clock) {}

  // Acquire creates or extends; with `renew_only`, NOT_FOUND unless a lease for the same key
  // is still live. INVALID_ARGUMENT for a bad name or version, or an empty holder.
  absl::Status PutInUseLease(const v1::LeaseRequest& request, bool renew_only, v1::Lease* response);
  absl::Status ReleaseInUseLease(const v1::LeaseRequest& request, v1::Lease* response);

  // Models with a live lease on request.volume_id (policy/purge_plan.h LiveLeasesOn).
  // INVALID_ARGUMENT without a volume.
  absl::Status VolumeLeases(const v1::VolumeLeasesRequest& request,
                            v1::VolumeLeasesResponse* response);
  // Room on demand (room/room_on_demand.h), answered before the caller's `deadline` (at most
  // a minute from now) so that it hears why.
  absl::Status MakeRoom(const v1::MakeRoomRequest& request,
                        std::chrono::system_clock::time_point deadline,
                        v1::PurgeResponse* response);

  absl::Status AcquireFillLease(const v1::FillLeaseRequest& request, v1::FillLease* response);
  absl::Status RenewFillLease(const v1::FillLeaseRequest& request, v1::FillLease* response);
  absl::Status ReleaseFillLease(const v1::FillLeaseRequest& request, v1::FillLease* response);
  // Waits for a change (or wait_ms) unless `cancelled()` turns true.
  absl::Status WatchFillLease(const v1::WatchFillLeaseRequest& request,
                              const std::function<bool()>& cancelled, v1::FillLease* response);

 private:
  CoordinatorStore& store_;
  FillLeaseTable& fill_leases_;
  RoomOnDemand& room_;
  const Clock& clock_;
};

}  // namespace modelcache
