#pragma once
// LocalCacheOps: what the coordinator client (coordinator_client.h) needs from the local cache
// to report usage and run the coordinator's commands. The agent's implementation over its
// ModelCache is ModelCacheOps (model_cache_ops.h); tests give their own.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

// What the client needs from the local cache. Called from the client's threads; the agent's
// implementation posts to its loop and waits.
class LocalCacheOps {
 public:
  virtual ~LocalCacheOps() = default;
  // Every model on the volume now (published, filling or being purged).
  virtual std::vector<v1::ModelUsage> Usage() = 0;
  struct Space {
    uint64_t capacity_bytes = 0;
    uint64_t free_bytes = 0;
  };
  virtual Space VolumeSpace() = 0;
  // One extra volume (extraVolumes: mounted, not served; the old volume after a storage
  // switch) as the coordinator's `usage` shows it.
  struct ExtraVolumeUsage {
    std::string volume_id;
    Space space;
    bool listed = false;  // false: it could not be read now (models empty, not "no models")
    std::vector<v1::ModelUsage> models;  // published, READY
  };
  // Every extra volume, in a fixed order. Default: none.
  virtual std::vector<ExtraVolumeUsage> ExtraVolumes() { return {}; }
  // Re-checks local leases (FAILED_PRECONDITION while in use), moves the version to trash and
  // returns the bytes freed; 0 (OK) when it is not cached.
  virtual absl::StatusOr<uint64_t> Purge(const std::string& name, const std::string& version) = 0;
  // Starts filling the model (returns once started or refused; the fill goes on).
  virtual absl::Status Prefetch(const std::string& name, const std::string& version,
                                const std::string& source) = 0;
  // The whole caching policy; Ensure for a disabled model answers FAILED_PRECONDITION.
  virtual void ApplyCachingPolicy(const v1::CachingPolicy& policy) = 0;
};

}  // namespace modelcache
