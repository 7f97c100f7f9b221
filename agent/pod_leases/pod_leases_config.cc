#include "agent/pod_leases/pod_leases_config.h"

#include <yaml-cpp/yaml.h>

#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::pod_leases {
namespace {

absl::StatusOr<std::string> Scalar(const std::string& path, const YAML::Node& node) {
  if (!node.IsScalar()) return absl::InvalidArgumentError(fmt::format("{}: want a scalar value", path));
  return node.Scalar();
}

}  // namespace

absl::StatusOr<PodLeasesConfig> ParsePodLeasesConfig(const YAML::Node& block) {
  PodLeasesConfig config;
  RETURN_IF_ERROR(ForEachField("kubernetes", block, [&](const std::string& path, const std::string& key,
                                                        const YAML::Node& value) -> absl::Status {
    if (key == "podLeases") {
      ASSIGN_OR_RETURN(std::string text, Scalar(path, value));
      if (text != "true" && text != "false") {
        return absl::InvalidArgumentError(fmt::format("{}: invalid value \"{}\": want true or false", path, text));
      }
      config.enabled = text == "true";
    } else if (key == "kubeconfig") {
      ASSIGN_OR_RETURN(config.kubeconfig, Scalar(path, value));
    } else if (key == "requestLog") {
      ASSIGN_OR_RETURN(config.request_log, Scalar(path, value));
    } else {
      return UnknownKeyError(path, {"podLeases", "kubeconfig", "requestLog"});
    }
    return absl::OkStatus();
  }));
  return config;
}

}  // namespace modelcache::pod_leases
