#pragma once
// The coordinator's caching policy as the agent applies it: may this model be cached? The
// agent answers Ensure for a refused model with FAILED_PRECONDITION, so that
// `modelcachectl fetch` falls back to a local download. Thread-safe holder for the latest
// policy pushed on the coordinator stream.
#include <mutex>
#include <optional>
#include <string_view>

#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

// Pure: a version rule wins over its model's rule, which wins over the default.
bool CachingAllowed(const v1::CachingPolicy& policy, std::string_view name,
                    std::string_view version);

class CachingPolicyHolder {
 public:
  // Before any policy arrives (coordinator never reached), `allow_without_policy` decides:
  // an agent configured without a coordinator caches everything.
  explicit CachingPolicyHolder(bool allow_without_policy) : allow_without_(allow_without_policy) {}
  void Set(const v1::CachingPolicy& policy);
  bool Allowed(std::string_view name, std::string_view version) const;

 private:
  mutable std::mutex mutex_;
  std::optional<v1::CachingPolicy> policy_;
  const bool allow_without_;
};

}  // namespace modelcache
