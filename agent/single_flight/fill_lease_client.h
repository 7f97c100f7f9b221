#pragma once
// Blocking calls to the coordinator's fill-lease RPCs (coordinator.proto: AcquireFillLease,
// RenewFillLease, ReleaseFillLease, WatchFillLease) on a channel of their own. Thread-safe.
// Every error is the call's gRPC status as an absl::Status: UNAVAILABLE or DEADLINE_EXCEEDED
// when the coordinator cannot be reached, ABORTED when a lease was lost.
#include <chrono>
#include <memory>

#include "absl/status/statusor.h"
#include "agent/coordination/coordinator_client.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

class FillLeaseClient {
 public:
  // Uses target, token and the TLS fields of `options`. `call_timeout` bounds each call
  // (Watch: its wait_ms plus call_timeout).
  FillLeaseClient(const CoordinatorClientOptions& options, std::chrono::milliseconds call_timeout);
  ~FillLeaseClient();

  absl::StatusOr<v1::FillLease> Acquire(const v1::FillLeaseRequest& request);
  absl::StatusOr<v1::FillLease> Renew(const v1::FillLeaseRequest& request);
  absl::StatusOr<v1::FillLease> Release(const v1::FillLeaseRequest& request);
  absl::StatusOr<v1::FillLease> Watch(const v1::WatchFillLeaseRequest& request);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache
