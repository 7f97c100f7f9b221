#include "coordinator/claims/claims_config.h"

#include <yaml-cpp/yaml.h>

#include "common/duration.h"
#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::claims {
namespace {

absl::StatusOr<std::string> Scalar(const std::string& path, const YAML::Node& node) {
  if (!node.IsScalar()) return absl::InvalidArgumentError(fmt::format("{}: want a scalar value", path));
  return node.Scalar();
}

absl::StatusOr<std::chrono::seconds> PositiveDuration(const std::string& path, const YAML::Node& node) {
  ASSIGN_OR_RETURN(std::string text, Scalar(path, node));
  absl::StatusOr<std::chrono::seconds> duration = ParseDuration(text);
  if (!duration.ok()) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", path, std::string(duration.status().message())));
  }
  if (duration->count() <= 0) {
    return absl::InvalidArgumentError(fmt::format("{}: invalid value \"{}\": want more than 0s", path, text));
  }
  return *duration;
}

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
      ASSIGN_OR_RETURN(std::string text, Scalar(path, value));
      if (text != "true" && text != "false") {
        return absl::InvalidArgumentError(fmt::format("{}: invalid value \"{}\": want true or false", path, text));
      }
      config.enabled = text == "true";
    } else if (key == "kubeconfig") {
      ASSIGN_OR_RETURN(config.kubeconfig, Scalar(path, value));
    } else if (key == "sourceNamespace") {
      ASSIGN_OR_RETURN(config.source_namespace, Scalar(path, value));
      if (!IsDnsLabel(config.source_namespace)) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: invalid value \"{}\": want a namespace name (a DNS-1123 label: at most 63 of a-z, 0-9, '-')",
            path, config.source_namespace));
      }
    } else if (key == "release") {
      ASSIGN_OR_RETURN(config.release, Scalar(path, value));
      if (!IsDnsLabel(config.release)) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: invalid value \"{}\": want a release name (a DNS-1123 label: at most 63 of a-z, 0-9, '-')",
            path, config.release));
      }
    } else if (key == "namespaceIdleAfter") {
      ASSIGN_OR_RETURN(config.namespace_idle_after, PositiveDuration(path, value));
    } else if (key == "resyncEvery") {
      ASSIGN_OR_RETURN(config.resync_every, PositiveDuration(path, value));
    } else if (key == "requestLog") {
      ASSIGN_OR_RETURN(config.request_log, Scalar(path, value));
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
