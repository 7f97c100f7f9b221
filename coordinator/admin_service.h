#pragma once
// What `modelcachectl` asks the coordinator (the admin RPCs of coordinator.proto): the
// registry (models, caching, pins, sources), the views (usage, nodes, audit, namespaces) and
// the commands an admin starts (delete, purge, prefetch). Each method is one RPC's body: the
// caller (coordinator_service.h) has authenticated and authorized it. Errors are the RPC's
// answer: INVALID_ARGUMENT names the bad field, FAILED_PRECONDITION says what is missing.
// Thread-safe: gRPC's threads call it concurrently.
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/auth.h"
#include "coordinator/config.h"
#include "coordinator/policy/purge_plan.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {
namespace claims {
class ClaimsController;
}  // namespace claims

class AgentStreams;
class CoordinatorStore;
class PurgeCommands;
class RoomOnDemand;

class AdminService {
 public:
  // Everything borrowed must outlive the service; `claims` is null unless kubernetes.enabled.
  AdminService(const CoordinatorConfig& config, const PurgePolicy& policy, const Clock& clock,
               CoordinatorStore& store, AgentStreams& streams, PurgeCommands& purges,
               RoomOnDemand& room, claims::ClaimsController* claims)
      : config_(config), policy_(policy), clock_(clock), store_(store), streams_(streams),
        purges_(purges), room_(room), claims_(claims) {}

  absl::Status ListModels(v1::ListModelsResponse* response);
  absl::Status ShowModel(const v1::ShowModelRequest& request, v1::ModelInfo* response);
  absl::Status Usage(v1::UsageResponse* response);
  absl::Status Nodes(v1::NodesResponse* response);
  // Changes the setting and pushes the new policy to every agent.
  absl::Status SetCaching(const v1::SetCachingRequest& request, v1::ModelInfo* response);
  absl::Status SetPin(const v1::SetPinRequest& request, v1::ModelInfo* response);
  // Marks the model deleted, pushes the policy and queues the purges the deleted rule
  // decides now (copies a lease holds, or on volumes no agent serves, are answered skipped).
  absl::Status DeleteModel(const v1::DeleteModelRequest& request, v1::PurgeResponse* response);
  // PlanManualPurge (policy/purge_plan.h) carried out.
  absl::Status Purge(const v1::PurgeRequest& request, v1::PurgeResponse* response);
  // What the next policy pass would purge; with room_bytes, what room on demand would purge on
  // the volume for that many bytes now. Changes nothing.
  absl::Status PurgeDryRun(const v1::PurgeDryRunRequest& request, v1::PurgeResponse* response);
  // One prefetch command per connected volume (or the one asked for), from the registered
  // source; a source given must be it, or is registered when there is none (as `principal`).
  absl::Status Prefetch(const v1::PrefetchRequest& request, const Principal& principal,
                        v1::PrefetchResponse* response);
  absl::Status SetSource(const v1::SetSourceRequest& request, const Principal& principal,
                         v1::ModelInfo* response);
  absl::Status SetSourcePrefix(const v1::SetSourcePrefixRequest& request,
                               const Principal& principal, v1::ModelInfo* response);
  absl::Status Audit(const v1::AuditRequest& request, v1::AuditResponse* response);
  // enabled=false in the answer when kubernetes.enabled is off.
  absl::Status Namespaces(v1::NamespacesResponse* response);

 private:
  absl::StatusOr<bool> CachingEnabled(const std::string& name, const std::string& version);
  // The source a prefetch fills from, and whether it is to be registered.
  absl::StatusOr<std::pair<std::string, bool>> PrefetchSource(const v1::PrefetchRequest& request);

  const CoordinatorConfig& config_;
  const PurgePolicy& policy_;
  const Clock& clock_;
  CoordinatorStore& store_;
  AgentStreams& streams_;
  PurgeCommands& purges_;
  RoomOnDemand& room_;
  claims::ClaimsController* const claims_;
};

}  // namespace modelcache
