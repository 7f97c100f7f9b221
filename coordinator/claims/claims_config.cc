#include "coordinator/claims/claims_config.h"

#include <yaml-cpp/yaml.h>

#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::claims {
namespace {

constexpr std::string_view kWantDnsLabel = "want a DNS-1123 label: at most 63 of a-z, 0-9, '-'";

// A DNS-1123 label: what a namespace name and (with the prefix) the claim name must be.
bool IsDnsLabel(const std::string& text) {
  if (text.empty() || text.size() > 63) return false;
  for (char c : text) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return text.front() != '-' && text.back() != '-';
}

}  // namespace

absl::StatusOr<KubernetesConfig> ParseKubernetesConfig(const YAML::Node& block) {
  KubernetesConfig config;
  RETURN_IF_ERROR(ForEachField("kubernetes", block, [&](const std::string& path, const std::string& key,
                                                        const YAML::Node& value) -> absl::Status {
    if (key == "enabled") {
      ASSIGN_OR_RETURN(config.enabled, YamlBool(path, value));
    } else if (key == "kubeconfig") {
      ASSIGN_OR_RETURN(config.kubeconfig, YamlScalar(path, value));
    } else if (key == "sourceNamespace") {
      ASSIGN_OR_RETURN(config.source_namespace, YamlScalar(path, value));
      if (!IsDnsLabel(config.source_namespace)) {
        return InvalidValueError(path, config.source_namespace, kWantDnsLabel);
      }
    } else if (key == "release") {
      ASSIGN_OR_RETURN(config.release, YamlScalar(path, value));
      if (!IsDnsLabel(config.release)) {
        return InvalidValueError(path, config.release, kWantDnsLabel);
      }
    } else if (key == "namespaceIdleAfter") {
      ASSIGN_OR_RETURN(config.namespace_idle_after, YamlDuration(path, value));
    } else if (key == "resyncEvery") {
      ASSIGN_OR_RETURN(config.resync_every, YamlDuration(path, value));
    } else if (key == "requestLog") {
      ASSIGN_OR_RETURN(config.request_log, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"enabled", "kubeconfig", "sourceNamespace", "release", "namespaceIdleAfter",
                                    "resyncEvery", "requestLog"});
    }
    return absl::OkStatus();
  }));
  return config;
}

std::string SourceClaimName(const std::string& release, const std::string& pvc_name_suffix) {
  return "models-cache-pvc-" + release + pvc_name_suffix;
}

absl::Status ValidateSourceClaim(const KubernetesConfig& config, const std::string& pvc_name_suffix) {
  if (!config.enabled) return absl::OkStatus();
  const std::string name = SourceClaimName(config.release, pvc_name_suffix);
  bool valid = name.size() <= 253 && name.back() != '-' && name.back() != '.';
  for (char c : name) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
  if (!valid) {
    return absl::InvalidArgumentError(fmt::format(
        "modelsCacheStorage.pvcNameSuffix: invalid value \"{}\": the cache claim's name \"{}\" "
        "(models-cache-pvc-<kubernetes.release><pvcNameSuffix>) must be a DNS-1123 subdomain: at most "
        "253 of a-z, 0-9, '-' and '.', ending with a letter or digit",
        pvc_name_suffix, name));
  }
  return absl::OkStatus();
}

}  // namespace modelcache::claims
