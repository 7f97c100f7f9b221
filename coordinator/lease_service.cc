#include "coordinator/lease_service.h"

#include "common/names.h"
#include "common/status_macros.h"
#include "coordinator/db/store.h"
#include "coordinator/fill_leases.h"

namespace modelcache {

absl::Status LeaseService::PutInUseLease(const v1::LeaseRequest& request, bool renew_only,
                                    v1::Lease* response) {
  RETURN_IF_ERROR(ValidateModelName(request.name()));
  RETURN_IF_ERROR(ValidateModelVersion(request.version()));
  if (request.holder().empty()) return absl::InvalidArgumentError("lease: holder is empty");
  ASSIGN_OR_RETURN(*response, store_.PutInUseLease(request, clock_.Now(), renew_only));
  return absl::OkStatus();
}

absl::Status LeaseService::ReleaseInUseLease(const v1::LeaseRequest& request, v1::Lease* response) {
  ASSIGN_OR_RETURN(*response, store_.ReleaseInUseLease(request));
  return absl::OkStatus();
}

absl::Status LeaseService::AcquireFillLease(const v1::FillLeaseRequest& request,
                                            v1::FillLease* response) {
  ASSIGN_OR_RETURN(*response, fill_leases_.Acquire(request));
  return absl::OkStatus();
}

absl::Status LeaseService::RenewFillLease(const v1::FillLeaseRequest& request,
                                          v1::FillLease* response) {
  ASSIGN_OR_RETURN(*response, fill_leases_.Renew(request));
  return absl::OkStatus();
}

absl::Status LeaseService::ReleaseFillLease(const v1::FillLeaseRequest& request,
                                            v1::FillLease* response) {
  ASSIGN_OR_RETURN(*response, fill_leases_.Release(request));
  return absl::OkStatus();
}

absl::Status LeaseService::WatchFillLease(const v1::WatchFillLeaseRequest& request,
                                          const std::function<bool()>& cancelled,
                                          v1::FillLease* response) {
  ASSIGN_OR_RETURN(*response, fill_leases_.Watch(request, cancelled));
  return absl::OkStatus();
}

}  // namespace modelcache
