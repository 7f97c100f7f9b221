#pragma once
// Purge decisions (coordinator/policy/purge_plan.h) turned into commands for the agents: each
// queued in the store for its volume unless a purge of that copy is already on its way,
// counted and logged once. Used by the policy runner and by the admin RPCs that purge.
#include <string_view>

#include "absl/status/status.h"
#include "common/clock.h"
#include "coordinator/policy/purge_plan.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

class CoordinatorMetrics;
class CoordinatorStore;

// The decision as the admin RPCs answer it: copy, size, `reason` ("unused", "manual", ...)
// and explanation.
void FillPurgeAction(const PurgeDecision& decision, std::string_view reason,
                     v1::PurgeAction* action);

class PurgeCommands {
 public:
  // All three must outlive this object.
  PurgeCommands(CoordinatorStore& store, CoordinatorMetrics& metrics, const Clock& clock)
      : store_(store), metrics_(metrics), clock_(clock) {}

  // Queues a purge of the decision's copy with the command reason "<reason>: <explanation>",
  // unless one is pending or sent already. `action` (may be null) gets the decision and, when
  // a command was queued, its id. Thread-safe (the store is).
  absl::Status Queue(const PurgeDecision& decision, std::string_view reason,
                     v1::PurgeAction* action = nullptr);

 private:
  CoordinatorStore& store_;
  CoordinatorMetrics& metrics_;
  const Clock& clock_;
};

}  // namespace modelcache
