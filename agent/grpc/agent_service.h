#pragma once
// The gRPC service modelcache.v1.Agent (proto/modelcache/v1/agent.proto) over a ModelCache.
// Handlers run on gRPC's threads and reach the cache only through its thread-safe methods.
// This header stays free of <grpcpp/...>: only the server that registers the service needs it.
#include <functional>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "agent/coordination/caching_policy.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace modelcache {

class AgentMetrics;
class PodLeaseTable;
class ModelCache;

struct AgentServiceOptions {
  // false: Ensure answers FAILED_PRECONDITION ("caching disabled on this node") so that
  // clients download on their own instead.
  bool caching_enabled = true;
  // Set when a coordinator decides (CachingPolicyHolder::Check): a FAILED_PRECONDITION for a
  // model (disabled by the coordinator, or no policy known yet) is Ensure's answer, so that
  // the client falls back. Empty: all allowed.
  std::function<absl::Status(std::string_view name, std::string_view version)> caching_allowed;
  // Whether the coordinator's policy is known yet (CachingPolicyHolder::Known): a refusal
  // before it is counted as reason "no_policy". Empty: always known.
  std::function<bool()> policy_known;
  // Set when a coordinator decides: the registry's source for a model version
  // (CachingPolicyHolder::LookupSource). Ensure fills only from it (agent/grpc/ensure_source.h).
  // Empty: no coordinator, Ensure fills from the request's source.
  std::function<RegistryLookup(std::string_view name, std::string_view version)> registry_lookup;
  // Called (on a gRPC thread) after a fill published a model, e.g. to refresh cache gauges.
  std::function<void()> on_model_published;
  // Pods' leases (agent/pod_leases/pod_lease_table.h): an Ensure that names a holder takes one when it ends READY,
  // and Hold renews or releases it. Null: Hold answers FAILED_PRECONDITION.
  PodLeaseTable* pod_leases = nullptr;
  // Called (on a gRPC thread) after a lease was taken for a new holder or released, so the
  // coordinator hears about it before its next purge pass.
  std::function<void()> on_leases_changed;
};

// Ensure streams the cache's progress (the newest one when the client reads slowly) and ends
// with the cache's status, its code mapped 1:1 onto the gRPC code. A client that cancels is
// unsubscribed; the fill goes on. `cache` and `metrics` must outlive the service.
std::unique_ptr<grpc::Service> MakeAgentService(ModelCache& cache, AgentMetrics& metrics,
                                                AgentServiceOptions options);

}  // namespace modelcache
