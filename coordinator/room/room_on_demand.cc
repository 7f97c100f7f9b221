#include "coordinator/room/room_on_demand.h"

#include <thread>
#include <vector>

#include "common/log_fields.h"
#include "common/names.h"
#include "common/status_macros.h"
#include "coordinator/policy/room_plan.h"
#include "coordinator/purge_commands.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// How often Make looks at the commands it waits for (a database read each).
constexpr std::chrono::milliseconds kPollInterval{20};

}  // namespace

RoomOnDemand::RoomOnDemand(CoordinatorStore& store, PurgeCommands& purges, const Clock& clock,
                           std::function<void()> dispatch)
    : store_(store), purges_(purges), clock_(clock), dispatch_(std::move(dispatch)) {}

absl::StatusOr<v1::PurgeResponse> RoomOnDemand::DryRun(std::string_view volume_id,
                                                       uint64_t bytes) {
  if (volume_id.empty()) {
    return absl::InvalidArgumentError("purge --dry-run --room: --volume is required");
  }
  ASSIGN_OR_RETURN(Snapshot snapshot, store_.LoadSnapshot());
  const RoomRequest request{std::string(volume_id), "a fill", "", bytes};
  RoomPlan plan = PlanRoom(snapshot, request, clock_.Now());
  if (!plan.enough) return absl::ResourceExhaustedError(DescribeRoomShortfall(request, plan));
  v1::PurgeResponse response;
  for (const PurgeDecision& decision : plan.decisions) {
    FillPurgeAction(decision, PurgeReasonName(decision.reason), response.add_actions());
  }
  return response;
}

absl::StatusOr<v1::PurgeResponse> RoomOnDemand::Make(
    const v1::MakeRoomRequest& call, std::chrono::steady_clock::time_point deadline) {
  if (call.volume_id().empty()) return absl::InvalidArgumentError("make room: volume_id is empty");
  RETURN_IF_ERROR(ValidateModelName(call.name()));
  RETURN_IF_ERROR(ValidateModelVersion(call.version()));
  std::lock_guard lock(running_);
  ASSIGN_OR_RETURN(Snapshot snapshot, store_.LoadSnapshot());
  const RoomRequest request{call.volume_id(), call.name(), call.version(), call.bytes_needed()};
  RoomPlan plan = PlanRoom(snapshot, request, clock_.Now());
  // Not enough: the caller's fill fails with this (RESOURCE_EXHAUSTED, so its client falls
  // back); the caller logs it.
  if (!plan.enough) return absl::ResourceExhaustedError(DescribeRoomShortfall(request, plan));

  v1::PurgeResponse response;
  std::vector<std::string> waiting;
  for (const PurgeDecision& decision : plan.decisions) {
    v1::PurgeAction* action = response.add_actions();
    // A purge already on its way gets no new command: the caller's second reservation tells.
    RETURN_IF_ERROR(purges_.Queue(decision, PurgeReasonName(decision.reason), action));
    if (!action->command_id().empty()) waiting.push_back(action->command_id());
  }
  dispatch_();

  for (const std::string& id : waiting) {
    for (;;) {
      ASSIGN_OR_RETURN(std::optional<StoredCommand> stored, store_.GetCommand(id));
      if (stored && stored->state == "done") break;
      if (stored && stored->state == "failed") {
        return absl::AbortedError(fmt::format(
            "volume {}: purge of {}@{} refused by node {}: {}", call.volume_id(),
            stored->command.purge().name(), stored->command.purge().version(), stored->node_name,
            stored->result_message));
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return absl::DeadlineExceededError(fmt::format(
            "volume {}: purge command {} not carried out in time (no agent of "
            "the volume answered); it stays queued",
            call.volume_id(), id));
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }
  return response;
}

}  // namespace modelcache
