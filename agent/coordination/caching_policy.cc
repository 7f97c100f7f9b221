#include "agent/coordination/caching_policy.h"

namespace modelcache {

bool CachingAllowed(const v1::CachingPolicy& policy, std::string_view name,
                    std::string_view version) {
  std::optional<bool> model_rule;
  for (const v1::CachingRule& rule : policy.rules()) {
    if (rule.name() != name) continue;
    if (!rule.version().empty() && rule.version() == version) return rule.enabled();
    if (rule.version().empty()) model_rule = rule.enabled();
  }
  return model_rule.value_or(policy.default_enabled());
}

void CachingPolicyHolder::Set(const v1::CachingPolicy& policy) {
  std::lock_guard lock(mutex_);
  policy_ = policy;
}

bool CachingPolicyHolder::Allowed(std::string_view name, std::string_view version) const {
  std::lock_guard lock(mutex_);
  if (!policy_) return allow_without_;
  return CachingAllowed(*policy_, name, version);
}

}  // namespace modelcache
