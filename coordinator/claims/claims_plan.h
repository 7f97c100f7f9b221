#pragma once
// What the coordinator should do with the cache claim copies, as a pure function of what the
// API server holds (the informers' caches), the namespaces pods asked in, and the time:
//
//   qualifying namespace = labelled modelcache.io/cache=enabled, or a pod asked for a cached
//                          model there within namespaceIdleAfter; never the source namespace,
//                          a terminating one, or a name that is not a namespace name
//   for each, with a healthy source (claim found, bound, its PV passes the storage check):
//     the PVC copy (create; repair labels; recreate when bound to another volume) and then the
//     PV copy (create with claimRef.uid of the PVC; repair mutable fields; recreate when its
//     volume source differs)
//   copies of a previous claim (pvcNameSuffix switched) in a qualifying namespace: kept while
//     their PVC exists, listed as previous
//   copies in a namespace that no longer qualifies (or is gone): deleted, PVC then PV, with
//     uid and resourceVersion preconditions; objects only, never data (Retain)
//   a PVC of the claim's name that is not ours: left alone and reported; no PV is made for it
//
// Only objects labelled app.kubernetes.io/managed-by=modelcache are ever written or deleted.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "kube/kube_client.h"

namespace modelcache::claims {

struct ClaimsSettings {
  std::string source_namespace;
  std::string claim_name;  // models-cache-pvc-<release><pvcNameSuffix>
  bool bypass_storage_check = false;
  std::chrono::seconds namespace_idle_after{24 * 3600};
};

// The API server's objects, as the informers hold them.
struct ClusterState {
  std::vector<nlohmann::json> namespaces;
  std::vector<nlohmann::json> volumes;  // every PV (the source's and our copies)
  std::vector<nlohmann::json> claims;   // every PVC
  // Last time a pod asked for a cached model in a namespace (claims/namespace_asks.h).
  std::map<std::string, Clock::TimePoint> asks;
};

enum class ActionKind { kCreateClaim, kCreateVolume, kPatchClaim, kPatchVolume, kDeleteClaim, kDeleteVolume };
const char* ActionName(ActionKind kind);

struct ClaimsAction {
  ActionKind kind = ActionKind::kCreateClaim;
  std::string namespace_name;  // of the PVC, or the namespace a PV copy serves
  std::string name;            // object name
  // Create: the object. Patch: a merge patch with metadata.resourceVersion. A kCreateVolume
  // that follows a kCreateClaim of the same namespace gets claimRef.uid from the created claim.
  nlohmann::json object;
  kube::DeletePreconditions preconditions;  // delete
  std::string why;                          // for the log
};

// Why a namespace is listed (modelcachectl namespaces).
struct NamespaceStatus {
  std::string namespace_name;
  std::string claim;          // PVC name
  std::string volume;         // PV name ("" when none)
  std::string phase;          // the PVC's phase: Bound, Pending, Lost; "" when it does not exist
  bool current = true;        // a copy of the current source claim (false: a previous one)
  std::vector<std::string> reasons;   // "label modelcache.io/cache=enabled", "a pod asked 5m ago"...
  std::vector<std::string> problems;  // "PVC ... exists and is not managed by modelcache: left alone"
};

struct SourceStatus {
  std::string claim;       // "<namespace>/<name>"
  std::string volume;      // the bound PV's name
  std::string storage;     // "nfs", "csi nfs.csi.k8s.io"...
  bool healthy = false;    // copies are made
  bool bypassed = false;   // copied despite the storage check
  // Problem kind for metrics and logs: "", source_missing, source_unbound, source_volume_missing,
  // storage_refused, no_volume_source. `problem` says it for people.
  std::string reason;
  std::string problem;
};

struct ClaimsPlan {
  SourceStatus source;
  std::vector<ClaimsAction> actions;  // in order
  std::vector<NamespaceStatus> namespaces;
  // Problem counts by reason (foreign_claim, invalid_namespace, ... and the source's).
  std::map<std::string, int> problems;
  // When an asked namespace stops qualifying (the next pass is due then); nullopt: none.
  std::optional<Clock::TimePoint> next_expiry;
};

ClaimsPlan PlanClaims(const ClusterState& cluster, const ClaimsSettings& settings, Clock::TimePoint now);

// OK for a namespace name (a DNS-1123 label, at most 63 characters); INVALID_ARGUMENT naming it.
absl::Status ValidateNamespaceName(std::string_view name);

}  // namespace modelcache::claims
