#pragma once
// LocalCacheOps (agent/coordinator_client.h) over the agent's ModelCache: what the coordinator
// client reports and the commands it runs, on the real cache volume.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "agent/caching_policy.h"
#include "agent/coordinator_client.h"
#include "agent/model_cache.h"

namespace modelcache {

struct CacheOpsOptions {
  std::filesystem::path cache_root;  // for statvfs
  // false (modelsCacheStorage.enabled: false): prefetch commands are refused.
  bool caching_enabled = true;
  // Called after a prefetched fill ends, so the client can report without waiting.
  std::function<void()> on_change;
};

class ModelCacheOps final : public LocalCacheOps {
 public:
  // `cache` and `policy` must outlive this object.
  ModelCacheOps(ModelCache& cache, CachingPolicyHolder& policy, CacheOpsOptions options);

  // Published models, all READY. live_leases is always 0: the agent does not track which
  // pods read a model (pods hold leases at the coordinator, which counts those itself).
  std::vector<v1::ModelUsage> Usage() override;
  Space VolumeSpace() override;  // statvfs of the cache root; zeros if it cannot be read
  // ModelCache::Purge. No local lease check: see Usage.
  absl::StatusOr<uint64_t> Purge(const std::string& name, const std::string& version) override;
  // FAILED_PRECONDITION when caching is disabled on this node or for this model; otherwise
  // ModelCache::Ensure, waiting until the fill reported its first progress or ended (a hit or
  // an early refusal such as INVALID_ARGUMENT comes back here).
  absl::Status Prefetch(const std::string& name, const std::string& version,
                        const std::string& source) override;
  void ApplyCachingPolicy(const v1::CachingPolicy& policy) override;

 private:
  ModelCache& cache_;
  CachingPolicyHolder& policy_;
  const CacheOpsOptions options_;
};

}  // namespace modelcache
