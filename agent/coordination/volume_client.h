#pragma once
// What an agent asks the coordinator about its cache volume as a whole, beyond what it knows
// itself: room on demand for a fill that does not fit (MakeRoom), and the live leases that
// pods on every node of the volume hold (VolumeLeases, for `cleanup`). Blocking calls on a
// channel of their own; thread-safe. Errors are the call's status, prefixed "coordinator: ".
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

struct CoordinatorClientOptions;

class VolumeClient {
 public:
  // Uses target, token and the TLS fields of `options`.
  explicit VolumeClient(const CoordinatorClientOptions& options);
  ~VolumeClient();

  // Returns once the coordinator purged the copies (or failed): RESOURCE_EXHAUSTED when it may
  // not purge enough, UNAVAILABLE / DEADLINE_EXCEEDED when it cannot be reached in `timeout`.
  absl::StatusOr<v1::PurgeResponse> MakeRoom(const v1::MakeRoomRequest& request,
                                             std::chrono::milliseconds timeout);

  // Cancels the calls in flight (they answer CANCELLED), e.g. at shutdown.
  void CancelAll();

  // The (name, version) pairs with a live lease on `volume_id`, held on any node.
  absl::StatusOr<std::set<std::pair<std::string, std::string>>> LeasedModels(
      const std::string& volume_id, std::chrono::milliseconds timeout);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache
