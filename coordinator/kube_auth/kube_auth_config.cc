#include "coordinator/kube_auth/kube_auth_config.h"

#include <yaml-cpp/yaml.h>

#include "common/duration.h"
#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::kube_auth {
namespace {

constexpr std::string_view kBlock = "coordinator.kubernetesAuth";

// "coordinator.kubernetesAuth.<key>": how errors name a setting of the block.
std::string Key(std::string_view key) { return fmt::format("{}.{}", kBlock, key); }

// A DNS label, as namespaces and ServiceAccount names are (a lenient check: the API server
// would never name a user after anything else).
bool IsName(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  for (char c : text) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return text.front() != '-' && text.back() != '-';
}

absl::StatusOr<std::chrono::seconds> Duration(std::string_view key, const YAML::Node& node,
                                              std::chrono::seconds min, std::chrono::seconds max) {
  ASSIGN_OR_RETURN(std::chrono::seconds duration, YamlDuration(Key(key), node, /*zero_allowed=*/true));
  if (duration < min || duration > max) {
    return InvalidValueError(Key(key), node.Scalar(),
                             fmt::format("want between {} and {}", FormatDuration(min), FormatDuration(max)));
  }
  return duration;
}

}  // namespace

std::string KubernetesAuthConfig::AgentUsername() const {
  return fmt::format("system:serviceaccount:{}:{}", agent_namespace, agent_service_account);
}

absl::StatusOr<KubernetesAuthConfig> ParseKubernetesAuthConfig(const YAML::Node& block) {
  KubernetesAuthConfig config;
  RETURN_IF_ERROR(ForEachField(kBlock, block, [&](const std::string& path, const std::string& key,
                                                  const YAML::Node& value) -> absl::Status {
    if (key == "enabled") {
      ASSIGN_OR_RETURN(config.enabled, YamlBool(Key(key), value));
    } else if (key == "audience") {
      ASSIGN_OR_RETURN(config.audience, YamlScalar(Key(key), value));
      if (config.audience.empty()) return InvalidValueError(Key(key), "", "want the audience of the agents' projected tokens");
    } else if (key == "agentServiceAccount") {
      ASSIGN_OR_RETURN(std::string text, YamlScalar(Key(key), value));
      const size_t slash = text.find('/');
      if (slash == std::string::npos || !IsName(text.substr(0, slash)) || !IsName(text.substr(slash + 1))) {
        return InvalidValueError(Key(key), text, "want namespace/name, such as modelcache/modelcache-agent");
      }
      config.agent_namespace = text.substr(0, slash);
      config.agent_service_account = text.substr(slash + 1);
    } else if (key == "cacheFor") {
      // Up to 10 minutes: a revoked binding must not go on working for long.
      ASSIGN_OR_RETURN(config.cache_for, Duration(key, value, std::chrono::seconds(0), std::chrono::seconds(600)));
    } else if (key == "reviewTimeout") {
      ASSIGN_OR_RETURN(config.review_timeout, Duration(key, value, std::chrono::seconds(1), std::chrono::seconds(60)));
    } else {
      return UnknownKeyError(path, {"enabled", "audience", "agentServiceAccount", "cacheFor", "reviewTimeout"});
    }
    return absl::OkStatus();
  }));
  return config;
}

}  // namespace modelcache::kube_auth
