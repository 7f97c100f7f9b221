#include "coordinator/room/room_on_demand.h"

#include <thread>
#include <vector>

#include "common/log_fields.h"
#include "common/names.h"
#include "common/status_macros.h"
#include "coordinator/policy/room_plan.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// How often Make looks at the commands it waits for (a database read each).
constexpr std::chrono::milliseconds kPollInterval{20};

void FillAction(const PurgeDecision& decision, v1::PurgeAction* action) {
  action->set_volume_id(decision.volume_id);
  action->set_name(decision.name);
  action->set_version(decision.version);
  action->set_size_bytes(decision.size_bytes);
  action->set_reason(PurgeReasonName(decision.reason));
  action->set_explanation(decision.explanation);
}

}  // namespace

RoomOnDemand::RoomOnDemand(CoordinatorStore& store, const Clock& clock, RoomOnDemandHooks hooks)
    : store_(store), clock_(clock), hooks_(std::move(hooks)) {}

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
  for (const PurgeDecision& decision : plan.decisions) FillAction(decision, response.add_actions());
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
    FillAction(decision, action);
    ASSIGN_OR_RETURN(bool open,
                     store_.HasOpenPurge(decision.volume_id, decision.name, decision.version));
    if (open) continue;  // already on its way: the caller's second reservation tells
    v1::Command command;
    command.mutable_purge()->set_name(decision.name);
    command.mutable_purge()->set_version(decision.version);
    command.mutable_purge()->set_reason(
        fmt::format("{}: {}", PurgeReasonName(decision.reason), decision.explanation));
    ASSIGN_OR_RETURN(command, store_.EnqueueCommand(decision.volume_id, command,
                                                    ToUnixMillis(clock_.Now())));
    action->set_command_id(command.id());
    waiting.push_back(command.id());
    hooks_.count_decision(PurgeReasonName(decision.reason));
    spdlog::info("purge queued {}", LogFields()
                                        .Add("model", decision.name)
                                        .Add("version", decision.version)
                                        .Add("volume", decision.volume_id)
                                        .Add("command", command.id())
                                        .Add("reason", PurgeReasonName(decision.reason))
                                        .Add("bytes", decision.size_bytes)
                                        .Add("why", decision.explanation));
  }
  hooks_.dispatch();

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
