#pragma once
// The coordinator's caching policy as the agent applies it: may this model be cached, and from
// which source (the registry's sources travel with the policy)? The agent answers Ensure for
// a refused model with FAILED_PRECONDITION, so that `modelcachectl fetch` falls back to a
// local download. Thread-safe holder for the latest policy pushed on the coordinator stream.
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

// Pure: a version rule wins over its model's rule, which wins over the default.
bool CachingAllowed(const v1::CachingPolicy& policy, std::string_view name,
                    std::string_view version);

// What an agent knows of the registry's source for one model version.
struct RegistryLookup {
  enum class State {
    kNoCoordinator,  // the agent has no coordinator: there is no registry
    kNotReceived,    // a coordinator is configured, but no registry arrived yet (nor was saved)
    kUnregistered,   // the registry has no source for this version
    kRegistered,     // `source` is the version's registered source (normalized)
  };
  State state = State::kNoCoordinator;
  std::string source;
};

class CachingPolicyHolder {
 public:
  // Before any policy arrives (coordinator never reached), `allow_without_policy` decides:
  // an agent configured without a coordinator caches everything (true); one with a coordinator
  // caches nothing until it knows which models are enabled (false: caching is opt-in).
  explicit CachingPolicyHolder(bool allow_without_policy) : allow_without_(allow_without_policy) {}
  void Set(const v1::CachingPolicy& policy);
  bool Allowed(std::string_view name, std::string_view version) const;
  // OK when Allowed; else FAILED_PRECONDITION saying why (the model is disabled, or no policy
  // is known yet), so that the client falls back to a local download.
  absl::Status Check(std::string_view name, std::string_view version) const;
  // Whether a policy was Set (received from the coordinator or loaded from the saved file).
  bool Known() const;
  // kNotReceived until a policy that includes the registry's sources was Set (a policy saved
  // by an agent, or sent by a coordinator, older than sources in the registry has none);
  // then kRegistered or kUnregistered. Never kNoCoordinator.
  RegistryLookup LookupSource(std::string_view name, std::string_view version) const;

 private:
  mutable std::mutex mutex_;
  std::optional<v1::CachingPolicy> policy_;
  // "name\0version" -> registered source, built from policy_ when it includes the sources.
  std::optional<std::map<std::string, std::string, std::less<>>> sources_;
  const bool allow_without_;
};

}  // namespace modelcache
