#include "coordinator/webhook/webhook_config.h"

#include <yaml-cpp/yaml.h>

#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::webhook {
namespace {

absl::Status Required(std::string_view key, const std::string& value) {
  if (!value.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format("webhook.{}: required when webhook.enabled is true", key));
}

absl::Status Absolute(std::string_view key, const std::string& value) {
  if (!value.empty() && value.front() == '/') return absl::OkStatus();
  return InvalidValueError(fmt::format("webhook.{}", key), value, "want an absolute path");
}

}  // namespace

absl::StatusOr<WebhookConfig> ParseWebhookConfig(const YAML::Node& block) {
  WebhookConfig config;
  RETURN_IF_ERROR(ForEachField("webhook", block, [&](const std::string& path, const std::string& key,
                                                     const YAML::Node& value) -> absl::Status {
    if (key == "enabled") {
      ASSIGN_OR_RETURN(config.enabled, YamlBool(path, value));
    } else if (key == "listen") {
      ASSIGN_OR_RETURN(config.listen, YamlScalar(path, value));
      if (config.listen.find(':') == std::string::npos) {
        return InvalidValueError(path, config.listen, "want host:port");
      }
    } else if (key == "tlsCert") {
      ASSIGN_OR_RETURN(config.tls_cert_file, YamlScalar(path, value));
    } else if (key == "tlsKey") {
      ASSIGN_OR_RETURN(config.tls_key_file, YamlScalar(path, value));
    } else if (key == "image") {
      ASSIGN_OR_RETURN(config.injection.image, YamlScalar(path, value));
    } else if (key == "claimName") {
      ASSIGN_OR_RETURN(config.injection.claim_name, YamlScalar(path, value));
    } else if (key == "socketHostPath") {
      ASSIGN_OR_RETURN(config.injection.socket_host_path, YamlScalar(path, value));
    } else if (key == "agentCacheRoot") {
      ASSIGN_OR_RETURN(config.injection.agent_cache_root, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"enabled", "listen", "tlsCert", "tlsKey", "image", "claimName",
                                    "socketHostPath", "agentCacheRoot"});
    }
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(Absolute("socketHostPath", config.injection.socket_host_path));
  RETURN_IF_ERROR(Absolute("agentCacheRoot", config.injection.agent_cache_root));
  if (config.enabled) {
    RETURN_IF_ERROR(Required("tlsCert", config.tls_cert_file));
    RETURN_IF_ERROR(Required("tlsKey", config.tls_key_file));
    RETURN_IF_ERROR(Required("image", config.injection.image));
  }
  return config;
}

}  // namespace modelcache::webhook
