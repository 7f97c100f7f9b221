#include "coordinator/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include <CLI/CLI.hpp>

#include "common/fs.h"
#include "common/logging.h"
#include "common/status_annotate.h"
#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

constexpr std::string_view kBlock = "coordinator";

// "coordinator.<key>": how errors name a setting of the block.
std::string Key(std::string_view key) { return fmt::format("{}.{}", kBlock, key); }

absl::StatusOr<double> Watermark(std::string_view key, const YAML::Node& node) {
  ASSIGN_OR_RETURN(std::string text, YamlScalar(Key(key), node));
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) {
    return InvalidValueError(Key(key), text, "want a number such as 0.9");
  }
  if (!(value > 0.0 && value <= 1.0)) {
    return InvalidValueError(Key(key), text, "want a fraction in (0, 1]");
  }
  return value;
}

absl::Status ApplyLog(const YAML::Node& block, CoordinatorConfig& config) {
  return ForEachField("coordinator.log", block, [&](const std::string& path, const std::string& key,
                                                    const YAML::Node& value) -> absl::Status {
    std::string full = "log." + key;
    if (key == "level") {
      ASSIGN_OR_RETURN(config.log_level, YamlScalar(Key(full), value));
      static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                     "error", "critical", "off"};
      bool known = false;
      for (std::string_view level : kLevels) known = known || level == config.log_level;
      if (!known) {
        return InvalidValueError(Key(full), config.log_level,
                                 "want trace, debug, info, warn, error, critical or off");
      }
    } else if (key == "json") {
      ASSIGN_OR_RETURN(config.log_json, YamlBool(Key(full), value));
    } else {
      return UnknownKeyError(path, {"level", "json"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyTls(const YAML::Node& block, CoordinatorTlsConfig& tls) {
  RETURN_IF_ERROR(ForEachField("coordinator.tls", block, [&](const std::string& path, const std::string& key,
                                                             const YAML::Node& value) -> absl::Status {
    std::string full = "tls." + key;
    if (key == "cert") {
      ASSIGN_OR_RETURN(tls.cert_file, YamlScalar(Key(full), value));
    } else if (key == "key") {
      ASSIGN_OR_RETURN(tls.key_file, YamlScalar(Key(full), value));
    } else if (key == "clientCa") {
      ASSIGN_OR_RETURN(tls.client_ca_file, YamlScalar(Key(full), value));
    } else {
      return UnknownKeyError(path, {"cert", "key", "clientCa"});
    }
    return absl::OkStatus();
  }));
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.tls: cert and key go together (cert \"{}\", key \"{}\")", kBlock,
                    tls.cert_file, tls.key_file));
  }
  if (!tls.client_ca_file.empty() && tls.cert_file.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.tls.clientCa: \"{}\" needs tls.cert and tls.key", kBlock,
                    tls.client_ca_file));
  }
  return absl::OkStatus();
}

absl::Status ApplyKey(const std::string& key, const YAML::Node& value, CoordinatorConfig& config) {
  if (key == "listen") {
    ASSIGN_OR_RETURN(config.listen, YamlScalar(Key(key), value));
    if (config.listen.find(':') == std::string::npos) {
      return InvalidValueError(Key(key), config.listen, "want host:port");
    }
  } else if (key == "database") {
    ASSIGN_OR_RETURN(config.database, YamlScalar(Key(key), value));
    if (config.database.empty()) return InvalidValueError(Key(key), "", "want a file path");
  } else if (key == "tokensFile") {
    ASSIGN_OR_RETURN(config.tokens_file, YamlScalar(Key(key), value));
  } else if (key == "kubernetesAuth") {
    ASSIGN_OR_RETURN(config.kubernetes_auth, kube_auth::ParseKubernetesAuthConfig(value));
  } else if (key == "highWatermark") {
    ASSIGN_OR_RETURN(config.high_watermark, Watermark(key, value));
  } else if (key == "lowWatermark") {
    ASSIGN_OR_RETURN(config.low_watermark, Watermark(key, value));
  } else if (key == "defaultCaching") {
    ASSIGN_OR_RETURN(std::string text, YamlScalar(Key(key), value));
    if (text == "enabled") {
      config.default_caching_enabled = true;
    } else if (text == "disabled") {
      config.default_caching_enabled = false;
    } else {
      return InvalidValueError(Key(key), text, "want enabled or disabled");
    }
  } else if (key == "maxThreads") {
    ASSIGN_OR_RETURN(uint64_t threads, YamlInteger(Key(key), value, 4, 65536));
    config.max_threads = static_cast<int>(threads);
  } else if (key == "tls") {
    RETURN_IF_ERROR(ApplyTls(value, config.tls));
  } else if (key == "metricsAddress") {
    ASSIGN_OR_RETURN(config.metrics_address, YamlScalar(Key(key), value));
  } else if (key == "log") {
    RETURN_IF_ERROR(ApplyLog(value, config));
  } else {
    return UnknownKeyError(fmt::format("{}.{}", kBlock, key),
                           {"listen", "database", "tokensFile", "kubernetesAuth", "highWatermark", "lowWatermark",
                            "defaultCaching", "maxThreads", "tls", "metricsAddress", "log"});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CoordinatorConfig> ParseCoordinatorConfig(std::string_view yaml_text) {
  // Duplicate keys are refused at any depth: a second `tokensFile: ""` or `coordinator:`
  // block must not turn authentication off in silence.
  ASSIGN_OR_RETURN(YAML::Node root, LoadConfigYaml(yaml_text));
  CoordinatorConfig config;
  RETURN_IF_ERROR(ForEachField("", root, [&](const std::string& path, const std::string& key,
                                             const YAML::Node& value) -> absl::Status {
    if (key == "modelsCacheStorage") {
      ASSIGN_OR_RETURN(config.storage, ParseStorageConfig(value));
      return absl::OkStatus();
    }
    if (key == "kubernetes") {
      ASSIGN_OR_RETURN(config.kubernetes, claims::ParseKubernetesConfig(value));
      return absl::OkStatus();
    }
    if (key == "webhook") {
      ASSIGN_OR_RETURN(config.webhook, webhook::ParseWebhookConfig(value));
      return absl::OkStatus();
    }
    if (key == kBlock) {
      return ForEachField(kBlock, value, [&](const std::string&, const std::string& setting,
                                             const YAML::Node& setting_value) {
        return ApplyKey(setting, setting_value, config);
      });
    }
    // The agent's keys have no meaning here; the coordinator's file is its own.
    return UnknownKeyError(path, {"modelsCacheStorage", "coordinator", "kubernetes", "webhook"});
  }));
  RETURN_IF_ERROR(claims::ValidateSourceClaim(config.kubernetes, config.storage.pvc_name_suffix));
  // The pods' copy of the cache claim has the source claim's name (coordinator/claims/).
  if (config.webhook.injection.claim_name.empty()) {
    config.webhook.injection.claim_name =
        claims::SourceClaimName(config.kubernetes.release, config.storage.pvc_name_suffix);
  }
  if (config.low_watermark > config.high_watermark) {
    return absl::InvalidArgumentError(fmt::format(
        "{}.lowWatermark: invalid value \"{}\": above highWatermark {}", kBlock,
        config.low_watermark, config.high_watermark));
  }
  return config;
}

absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return Annotate(text.status(), "config");
  absl::StatusOr<CoordinatorConfig> config = ParseCoordinatorConfig(*text);
  if (!config.ok()) {
    return Annotate(config.status(), path);
  }
  return config;
}

void AddCoordinatorFlags(CLI::App& app, CoordinatorFlags& flags) {
  app.add_option("--config", flags.config_file, "YAML configuration file")->required();
  app.add_option("--log-level", flags.log_level,
                 "trace, debug, info, warn, error (overrides log.level)");
  app.add_flag("--log-json", flags.log_json, "JSON log lines (overrides log.json)");
}

absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const CoordinatorFlags& flags,
                                                        const ProcessEnvironment& environment) {
  ASSIGN_OR_RETURN(CoordinatorConfig config, LoadCoordinatorConfig(flags.config_file));
  RETURN_IF_ERROR(ApplyLogEnvironment(environment.Get(kLogLevelVariable),
                                      environment.Get(kLogJsonVariable), config.log_level,
                                      config.log_json));
  if (flags.log_level.has_value() && !flags.log_level->empty()) config.log_level = *flags.log_level;
  if (flags.log_json) config.log_json = true;
  config.kubernetes.environment =
      kube::KubeEnvironment::FromLookup(
          [&environment](const char* name) { return environment.Lookup(name); });
  return config;
}

}  // namespace modelcache
