#include "coordinator/webhook/webhook_config.h"

#include <yaml-cpp/yaml.h>

#include "common/duration.h"
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

absl::Status ParseCertificates(const std::string& prefix, const YAML::Node& block, ManagedCertificatesConfig& config) {
  RETURN_IF_ERROR(ForEachField(prefix, block, [&](const std::string& path, const std::string& key,
                                                  const YAML::Node& value) -> absl::Status {
    if (key == "managed") {
      ASSIGN_OR_RETURN(config.managed, YamlBool(path, value));
    } else if (key == "secret") {
      ASSIGN_OR_RETURN(config.secret, YamlScalar(path, value));
    } else if (key == "namespace") {
      ASSIGN_OR_RETURN(config.namespace_name, YamlScalar(path, value));
    } else if (key == "service") {
      ASSIGN_OR_RETURN(config.service, YamlScalar(path, value));
    } else if (key == "clusterDomain") {
      ASSIGN_OR_RETURN(config.cluster_domain, YamlScalar(path, value));
    } else if (key == "mutatingWebhookConfiguration") {
      ASSIGN_OR_RETURN(config.webhook_configuration, YamlScalar(path, value));
    } else if (key == "validFor") {
      ASSIGN_OR_RETURN(config.valid_for, YamlDuration(path, value));
    } else if (key == "caValidFor") {
      ASSIGN_OR_RETURN(config.authority_valid_for, YamlDuration(path, value));
    } else if (key == "renewBefore") {
      ASSIGN_OR_RETURN(config.renew_before, YamlDuration(path, value));
    } else if (key == "checkEvery") {
      ASSIGN_OR_RETURN(config.check_every, YamlDuration(path, value));
    } else {
      return UnknownKeyError(path, {"managed", "secret", "namespace", "service", "clusterDomain",
                                    "mutatingWebhookConfiguration", "validFor", "caValidFor", "renewBefore",
                                    "checkEvery"});
    }
    if (!value.IsScalar() || !value.Scalar().empty()) return absl::OkStatus();
    return InvalidValueError(path, "", "want a value");
  }));
  for (const auto& [key, value] : {std::pair{"validFor", config.valid_for}, std::pair{"caValidFor", config.authority_valid_for}}) {
    if (config.renew_before >= value) {
      return InvalidValueError(prefix + ".renewBefore", FormatDuration(config.renew_before),
                               fmt::format("want less than {}.{} ({})", prefix, key, FormatDuration(value)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> ManagedCertificatesConfig::DnsNames() const {
  const std::string in_namespace = service + "." + namespace_name;
  return {service, in_namespace, in_namespace + ".svc", in_namespace + ".svc." + cluster_domain};
}

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
    } else if (key == "certificates") {
      RETURN_IF_ERROR(ParseCertificates(path, value, config.certificates));
    } else if (key == "image") {
      ASSIGN_OR_RETURN(config.injection.image, YamlScalar(path, value));
    } else if (key == "claimName") {
      ASSIGN_OR_RETURN(config.injection.claim_name, YamlScalar(path, value));
    } else if (key == "socketHostPath") {
      ASSIGN_OR_RETURN(config.injection.socket_host_path, YamlScalar(path, value));
    } else if (key == "agentCacheRoot") {
      ASSIGN_OR_RETURN(config.injection.agent_cache_root, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"enabled", "listen", "tlsCert", "tlsKey", "certificates", "image", "claimName",
                                    "socketHostPath", "agentCacheRoot"});
    }
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(Absolute("socketHostPath", config.injection.socket_host_path));
  RETURN_IF_ERROR(Absolute("agentCacheRoot", config.injection.agent_cache_root));
  if (config.enabled) {
    const bool files = !config.tls_cert_file.empty() || !config.tls_key_file.empty();
    if (files && config.certificates.managed) {
      return absl::InvalidArgumentError(
          "webhook.certificates.managed: true with webhook.tlsCert/tlsKey set; use one or the other");
    }
    if (!config.certificates.managed) {
      if (!files) {
        return absl::InvalidArgumentError(
            "webhook.tlsCert: required when webhook.enabled is true, unless webhook.certificates.managed is true");
      }
      RETURN_IF_ERROR(Required("tlsCert", config.tls_cert_file));
      RETURN_IF_ERROR(Required("tlsKey", config.tls_key_file));
    }
    RETURN_IF_ERROR(Required("image", config.injection.image));
  }
  return config;
}

}  // namespace modelcache::webhook
