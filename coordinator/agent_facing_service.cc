#include "coordinator/agent_facing_service.h"

#include <algorithm>

#include "common/names.h"
#include "common/status_macros.h"
#include "coordinator/db/store.h"
#include "coordinator/fill_leases.h"
#include "coordinator/policy/purge_plan.h"
#include "coordinator/room/room_on_demand.h"

namespace modelcache {

absl::Status AgentFacingService::PutInUseLease(const v1::LeaseRequest& request, bool renew_only,
                                    v1::Lease* response) {
  RETURN_IF_ERROR(ValidateModelName(request.name()));
  RETURN_IF_ERROR(ValidateModelVersion(request.version()));
  if (request.holder().empty()) return absl::InvalidArgumentError("lease: holder is empty");
  ASSIGN_OR_RETURN(*response, store_.PutInUseLease(request, clock_.Now(), renew_only));
  return absl::OkStatus();
}

absl::Status AgentFacingService::ReleaseInUseLease(const v1::LeaseRequest& request, v1::Lease* response) {
  ASSIGN_OR_RETURN(*response, store_.ReleaseInUseLease(request));
  return absl::OkStatus();
}

absl::Status AgentFacingService::VolumeLeases(const v1::VolumeLeasesRequest& request,
                                              v1::VolumeLeasesResponse* response) {
  if (request.volume_id().empty()) {
    return absl::InvalidArgumentError("volume leases: volume_id is empty");
  }
  ASSIGN_OR_RETURN(Snapshot snapshot, store_.LoadSnapshot());
  for (const auto& [model, count] : LiveLeasesOn(snapshot, request.volume_id(), clock_.Now())) {
    v1::LeasedModel* leased = response->add_models();
    leased->set_name(model.first);
    leased->set_version(model.second);
    leased->set_live_leases(count);
  }
  return absl::OkStatus();
}

absl::Status AgentFacingService::MakeRoom(const v1::MakeRoomRequest& request,
                                          std::chrono::system_clock::time_point deadline,
                                          v1::PurgeResponse* response) {
  // Answer before the caller gives up, so that it hears why; never wait more than a minute.
  constexpr std::chrono::seconds kMaxRoomWait{60};
  auto left = deadline - std::chrono::system_clock::now() - std::chrono::milliseconds(500);
  left = std::clamp<std::chrono::system_clock::duration>(left, {}, kMaxRoomWait);
  ASSIGN_OR_RETURN(*response, room_.Make(request, std::chrono::steady_clock::now() + left));
  return absl::OkStatus();
}

absl::Status AgentFacingService::AcquireFillLease(const v1::FillLeaseRequest& request,
                                            v1::FillLease* response) {
  ASSIGN_OR_RETURN(*response, fill_leases_.Acquire(request));
  return absl::OkStatus();
}

absl::Status AgentFacingService::RenewFillLease(const v1::FillLeaseRequest& request,
                                          v1::FillLease* response) {
  ASSIGN_OR_RETURN(*response, fill_leases_.Renew(request));
  return absl::OkStatus();
}

absl::Status AgentFacingService::ReleaseFillLease(const v1::FillLeaseRequest& request,
                                            v1::FillLease* response) {
  ASSIGN_OR_RETURN(*response, fill_leases_.Release(request));
  return absl::OkStatus();
}

absl::Status AgentFacingService::WatchFillLease(const v1::WatchFillLeaseRequest& request,
                                          const std::function<bool()>& cancelled,
                                          v1::FillLease* response) {
  ASSIGN_OR_RETURN(*response, fill_leases_.Watch(request, cancelled));
  return absl::OkStatus();
}

}  // namespace modelcache
