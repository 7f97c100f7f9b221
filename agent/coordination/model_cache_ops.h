#pragma once
// ModelCacheOps: LocalCacheOps (local_cache_ops.h) over the agent's ModelCache, i.e. what the
// coordinator client reports and the commands it runs, on the real cache volume.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "agent/coordination/caching_policy.h"
#include "agent/coordination/local_cache_ops.h"
#include "agent/maintenance/maintenance.h"
#include "agent/model_cache.h"
#include "agent/pod_leases/pod_lease_table.h"

namespace modelcache {

struct CacheOpsOptions {
  std::filesystem::path cache_root;  // for statvfs
  // false (modelsCacheStorage.enabled: false): prefetch commands are refused.
  bool caching_enabled = true;
  // Called after a prefetched fill ends, so the client can report without waiting.
  std::function<void()> on_change;
  // Pods' leases on this agent: reported per model, and a leased model is not purged.
  // Null: no leases (live_leases 0).
  const PodLeaseTable* pod_leases = nullptr;
  // Where each policy from the coordinator is saved (agent/coordination/saved_policy.h); empty: not saved.
  std::filesystem::path policy_file;
  // extraVolumes (id and root): their published models are reported too, so that the old
  // volume after a storage switch shows in the coordinator's `usage` until it is cleaned.
  std::vector<MaintainedVolume> extra_volumes;
};

class ModelCacheOps final : public LocalCacheOps {
 public:
  // `cache` and `policy` must outlive this object.
  ModelCacheOps(ModelCache& cache, CachingPolicyHolder& policy, CacheOpsOptions options);

  // Published models, all READY, each with the live leases pods hold on it at this agent.
  // ModelCache::List checks each against the volume first, so a model another agent of the
  // volume purged (or that was removed by hand) is not reported again.
  std::vector<v1::ModelUsage> Usage() override;
  Space VolumeSpace() override;  // statvfs of the cache root; zeros if it cannot be read
  // Each extra volume's published models (its inventory: what `modelcachectl volumes` counts)
  // and statvfs; a volume that cannot be read is returned with listed=false (logged).
  std::vector<ExtraVolumeUsage> ExtraVolumes() override;
  // ModelCache::Purge, unless a pod holds a live lease on the model here: then
  // FAILED_PRECONDITION naming the model (the coordinator's plan may predate the lease).
  absl::StatusOr<uint64_t> Purge(const std::string& name, const std::string& version) override;
  // FAILED_PRECONDITION when caching is disabled on this node or for this model; otherwise
  // ModelCache::Ensure, waiting until the fill reported its first progress or ended (a hit or
  // an early refusal such as INVALID_ARGUMENT comes back here).
  absl::Status Prefetch(const std::string& name, const std::string& version,
                        const std::string& source) override;
  // Applies the policy and saves it to policy_file (a failed save is logged: the policy still
  // applies until the agent restarts).
  void ApplyCachingPolicy(const v1::CachingPolicy& policy) override;

 private:
  ModelCache& cache_;
  CachingPolicyHolder& policy_;
  const CacheOpsOptions options_;
};

}  // namespace modelcache
