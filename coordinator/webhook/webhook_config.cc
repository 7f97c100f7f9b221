#include "coordinator/webhook/webhook_config.h"

#include <yaml-cpp/yaml.h>

#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::webhook {
namespace {

absl::StatusOr<std::string> Scalar(const std::string& path, const YAML::Node& node) {
  if (!node.IsScalar()) return absl::InvalidArgumentError(fmt::format("{}: want a scalar value", path));
  return node.Scalar();
}

absl::Status Required(std::string_view key, const std::string& value) {
  if (!value.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format("webhook.{}: required when webhook.enabled is true", key));
}

absl::Status Absolute(std::string_view key, const std::string& value) {
  if (!value.empty() && value.front() == '/') return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("webhook.{}: invalid value \"{}\": want an absolute path", key, value));
}

}  // namespace

absl::StatusOr<WebhookConfig> ParseWebhookConfig(const YAML::Node& block) {
  WebhookConfig config;
  RETURN_IF_ERROR(ForEachField("webhook", block, [&](const std::string& path, const std::string& key,
                                                     const YAML::Node& value) -> absl::Status {
    if (key == "enabled") {
      ASSIGN_OR_RETURN(std::string text, Scalar(path, value));
      if (text != "true" && text != "false") {
        return absl::InvalidArgumentError(fmt::format("{}: invalid value \"{}\": want true or false", path, text));
      }
      config.enabled = text == "true";
    } else if (key == "listen") {
      ASSIGN_OR_RETURN(config.listen, Scalar(path, value));
      if (config.listen.find(':') == std::string::npos) {
        return absl::InvalidArgumentError(
            fmt::format("{}: invalid value \"{}\": want host:port", path, config.listen));
      }
    } else if (key == "tlsCert") {
      ASSIGN_OR_RETURN(config.tls_cert_file, Scalar(path, value));
    } else if (key == "tlsKey") {
      ASSIGN_OR_RETURN(config.tls_key_file, Scalar(path, value));
    } else if (key == "image") {
      ASSIGN_OR_RETURN(config.injection.image, Scalar(path, value));
    } else if (key == "claimName") {
      ASSIGN_OR_RETURN(config.injection.claim_name, Scalar(path, value));
    } else if (key == "socketHostPath") {
      ASSIGN_OR_RETURN(config.injection.socket_host_path, Scalar(path, value));
    } else if (key == "agentCacheRoot") {
      ASSIGN_OR_RETURN(config.injection.agent_cache_root, Scalar(path, value));
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
