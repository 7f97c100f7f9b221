#pragma once
// Room on demand at the coordinator (coordinator.proto MakeRoom): plans with PlanRoom
// (coordinator/policy/room_plan.h), queues the purges as every purge is queued (reason "room",
// audited when an agent carried it out), hands them to an agent of the volume and waits for
// their results. One request at a time: two fills that both need room do not plan with the
// same copies. Blocking; call from a gRPC handler thread.
#include <chrono>
#include <functional>
#include <mutex>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/db/store.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

class PurgeCommands;

class RoomOnDemand {
 public:
  // Queues its purges through `purges` (purge_commands.h); `dispatch` hands pending commands
  // out. Everything borrowed must outlive this object.
  RoomOnDemand(CoordinatorStore& store, PurgeCommands& purges, const Clock& clock,
               std::function<void()> dispatch);

  // What Make would purge now, without purging (`purge --dry-run --room`). RESOURCE_EXHAUSTED
  // naming what it may not take when it could not make that much room.
  absl::StatusOr<v1::PurgeResponse> DryRun(std::string_view volume_id, uint64_t bytes);

  // Purges just enough and returns once the agents answered, before `deadline`.
  // INVALID_ARGUMENT for a bad request; RESOURCE_EXHAUSTED (nothing purged) when not enough
  // may be purged; DEADLINE_EXCEEDED when the purges did not finish in time (they go on);
  // ABORTED when an agent refused one (a lease taken meanwhile).
  absl::StatusOr<v1::PurgeResponse> Make(const v1::MakeRoomRequest& request,
                                         std::chrono::steady_clock::time_point deadline);

 private:
  CoordinatorStore& store_;
  PurgeCommands& purges_;
  const Clock& clock_;
  const std::function<void()> dispatch_;
  std::mutex running_;  // one Make at a time
};

}  // namespace modelcache
