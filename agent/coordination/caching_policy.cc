#include "agent/coordination/caching_policy.h"

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

std::string SourceKey(std::string_view name, std::string_view version) {
  std::string key;
  key.reserve(name.size() + 1 + version.size());
  key.append(name).push_back('\0');
  key.append(version);
  return key;
}

}  // namespace

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
  std::optional<std::map<std::string, std::string, std::less<>>> sources;
  if (policy.sources_included()) {
    sources.emplace();
    for (const v1::RegisteredSource& source : policy.sources()) {
      (*sources)[SourceKey(source.name(), source.version())] = source.source();
    }
  }
  std::lock_guard lock(mutex_);
  policy_ = policy;
  sources_ = std::move(sources);
}

bool CachingPolicyHolder::Allowed(std::string_view name, std::string_view version) const {
  std::lock_guard lock(mutex_);
  if (!policy_) return allow_without_;
  return CachingAllowed(*policy_, name, version);
}

absl::Status CachingPolicyHolder::Check(std::string_view name, std::string_view version) const {
  std::lock_guard lock(mutex_);
  if (!policy_ && !allow_without_) {
    return absl::FailedPreconditionError(fmt::format(
        "model {}@{}: no caching policy from the coordinator yet (caching is opt-in: each model "
        "must be enabled there): download the model yourself",
        name, version));
  }
  if (policy_ ? CachingAllowed(*policy_, name, version) : allow_without_) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format(
      "caching disabled for model {}@{} by the coordinator: download the model yourself", name,
      version));
}

bool CachingPolicyHolder::Known() const {
  std::lock_guard lock(mutex_);
  return policy_.has_value();
}

RegistryLookup CachingPolicyHolder::LookupSource(std::string_view name,
                                                 std::string_view version) const {
  const std::string key = SourceKey(name, version);
  std::lock_guard lock(mutex_);
  if (!sources_) return {RegistryLookup::State::kNotReceived, {}};
  auto found = sources_->find(key);
  if (found == sources_->end()) return {RegistryLookup::State::kUnregistered, {}};
  return {RegistryLookup::State::kRegistered, found->second};
}

}  // namespace modelcache
