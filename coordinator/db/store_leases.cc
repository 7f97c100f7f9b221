// CoordinatorStore, in-use leases (the AcquireLease/RenewLease/ReleaseLease RPCs).
#include "coordinator/db/store.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/status_macros.h"
#include "coordinator/db/store_internal.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

using namespace store_internal;  // the helpers CoordinatorStore's files share

absl::StatusOr<v1::Lease> CoordinatorStore::PutInUseLease(const v1::LeaseRequest& request,
                                                     Clock::TimePoint now, bool renew_only) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  const int64_t ttl_ms = int64_t{request.ttl_seconds() == 0 ? 300u : request.ttl_seconds()} * 1000;
  RETURN_IF_ERROR(WithTransaction(*db_, [&]() -> absl::Status {
    if (renew_only) {
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "SELECT 1 FROM leases WHERE name=?1 AND version=?2 AND volume_id=?3 AND holder=?4 AND "
          "expires_ms>?5"));
      statement->Bind(1, request.name()).Bind(2, request.version()).Bind(3, request.volume_id())
          .Bind(4, request.holder()).Bind(5, now_ms);
      ASSIGN_OR_RETURN(bool live, statement->Step());
      if (!live) {
        return absl::NotFoundError(fmt::format("lease of {}@{} for {}: expired or never acquired",
                                               request.name(), request.version(),
                                               request.holder()));
      }
    }
    {
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "INSERT INTO leases(name, version, volume_id, holder, expires_ms) VALUES(?1, ?2, ?3, "
          "?4, ?5) ON CONFLICT(name, version, volume_id, holder) DO UPDATE SET expires_ms=?5"));
      statement->Bind(1, request.name()).Bind(2, request.version()).Bind(3, request.volume_id())
          .Bind(4, request.holder()).Bind(5, now_ms + ttl_ms);
      RETURN_IF_ERROR(statement->Run());
    }
    {
      // Expired leases are only history; drop them while we hold the lock anyway.
      ASSIGN_OR_RETURN(auto statement, db_->Prepare("DELETE FROM leases WHERE expires_ms<=?1"));
      statement->Bind(1, now_ms);
      RETURN_IF_ERROR(statement->Run());
    }
    return absl::OkStatus();
  }));
  v1::Lease lease;
  lease.set_name(request.name());
  lease.set_version(request.version());
  lease.set_holder(request.holder());
  lease.set_volume_id(request.volume_id());
  lease.set_expires_unix_ms(now_ms + ttl_ms);
  return lease;
}

absl::StatusOr<v1::Lease> CoordinatorStore::ReleaseInUseLease(const v1::LeaseRequest& request) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "DELETE FROM leases WHERE name=?1 AND version=?2 AND volume_id=?3 AND holder=?4"));
  statement->Bind(1, request.name()).Bind(2, request.version()).Bind(3, request.volume_id())
      .Bind(4, request.holder());
  RETURN_IF_ERROR(statement->Run());
  v1::Lease lease;
  lease.set_name(request.name());
  lease.set_version(request.version());
  lease.set_holder(request.holder());
  lease.set_volume_id(request.volume_id());
  return lease;
}

}  // namespace modelcache
