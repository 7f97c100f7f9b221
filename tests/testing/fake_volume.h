#pragma once
// A cache volume in memory behind LocalCacheOps, for tests of the coordinator client and the
// coordinator that need no real agent: models are put by hand, purges remove them (a model
// with live leases refuses, as the agent does), prefetches are recorded and put a 42-byte
// model. Thread-safe: the coordinator client calls it from its own threads.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/coordination/local_cache_ops.h"

namespace modelcache::testing {

class FakeVolume final : public LocalCacheOps {
 public:
  // A READY model; `last_access_ms` -1: now.
  void Put(const std::string& name, const std::string& version, uint64_t bytes,
           int64_t last_access_ms = -1, uint32_t leases = 0);
  bool Has(const std::string& name, const std::string& version);
  // Purge commands run for name@version, including refused ones.
  int Purges(const std::string& name, const std::string& version);
  // "name@version source" of each Prefetch, in order.
  std::vector<std::string> Prefetches();
  // The last policy applied; nullopt before the first.
  std::optional<v1::CachingPolicy> Policy();

  std::vector<v1::ModelUsage> Usage() override;
  Space VolumeSpace() override { return Space{10000, 5000}; }
  absl::StatusOr<uint64_t> Purge(const std::string& name, const std::string& version) override;
  absl::Status Prefetch(const std::string& name, const std::string& version,
                        const std::string& source) override;
  void ApplyCachingPolicy(const v1::CachingPolicy& policy) override;

 private:
  using Key = std::pair<std::string, std::string>;
  std::mutex mutex_;
  std::map<Key, v1::ModelUsage> models_;  // guarded by mutex_
  std::map<Key, int> purges_;             // guarded by mutex_
  std::vector<std::string> prefetches_;   // guarded by mutex_
  std::optional<v1::CachingPolicy> policy_;  // guarded by mutex_
};

}  // namespace modelcache::testing
