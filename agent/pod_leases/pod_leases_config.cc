#include "agent/pod_leases/pod_leases_config.h"

#include <yaml-cpp/yaml.h>

#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::pod_leases {

absl::StatusOr<PodLeasesConfig> ParsePodLeasesConfig(const YAML::Node& block) {
  PodLeasesConfig config;
  RETURN_IF_ERROR(ForEachField("kubernetes", block, [&](const std::string& path, const std::string& key,
                                                        const YAML::Node& value) -> absl::Status {
    if (key == "podLeases") {
      ASSIGN_OR_RETURN(config.enabled, YamlBool(path, value));
    } else if (key == "kubeconfig") {
      ASSIGN_OR_RETURN(config.kubeconfig, YamlScalar(path, value));
    } else if (key == "requestLog") {
      ASSIGN_OR_RETURN(config.request_log, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"podLeases", "kubeconfig", "requestLog"});
    }
    return absl::OkStatus();
  }));
  return config;
}

}  // namespace modelcache::pod_leases
