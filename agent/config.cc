#include "agent/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <charconv>
#include <climits>
#include <tuple>
#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "agent/source/aws_credentials.h"
#include "agent/source/registry_client.h"
#include "agent/store/layout.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status_annotate.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"


namespace modelcache {
namespace {

// Unix socket paths must fit sockaddr_un::sun_path (108 bytes with the NUL).
constexpr size_t kMaxSocketPathLength = 107;

absl::Status ApplyLog(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("log", node, [&](const std::string& path, const std::string& key,
                                     const YAML::Node& value) -> absl::Status {
    if (key == "level") {
      ASSIGN_OR_RETURN(config.log_level, YamlScalar(path, value));
    } else if (key == "json") {
      ASSIGN_OR_RETURN(config.log_json, YamlBool(path, value));
    } else {
      return UnknownKeyError(path, {"level", "json"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyFill(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("fill", node, [&](const std::string& path, const std::string& key,
                                      const YAML::Node& value) -> absl::Status {
    if (key == "concurrency") {
      ASSIGN_OR_RETURN(uint64_t concurrency, YamlInteger(path, value, 1, 1024));
      config.fill.concurrency = static_cast<uint32_t>(concurrency);
    } else if (key == "chunkSize") {
      ASSIGN_OR_RETURN(config.fill.chunk_size, YamlQuantity(path, value));
      if (config.fill.chunk_size < (64u << 10) || config.fill.chunk_size > (1ull << 30)) {
        return InvalidValueError(path, value.Scalar(), "want 64Ki..1Gi");
      }
    } else if (key == "stallTimeout") {
      ASSIGN_OR_RETURN(config.fill.stall_timeout, YamlDuration(path, value));
    } else if (key == "maxAttempts") {
      ASSIGN_OR_RETURN(uint64_t attempts, YamlInteger(path, value, 1, 100));
      config.fill.retry.max_attempts = static_cast<uint32_t>(attempts);
    } else if (key == "directIo") {
      ASSIGN_OR_RETURN(config.fill.direct_io, YamlBool(path, value));
    } else {
      return UnknownKeyError(path,
                             {"concurrency", "chunkSize", "stallTimeout", "maxAttempts", "directIo"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyFillLease(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("fillLease", node, [&](const std::string& path, const std::string& key,
                                           const YAML::Node& value) -> absl::Status {
    std::chrono::seconds* target = nullptr;
    if (key == "ttl") {
      target = &config.fill_lease_ttl;
    } else if (key == "pollInterval") {
      target = &config.fill_poll_interval;
    } else if (key == "waitTimeout") {
      target = &config.fill_wait_timeout;
    } else if (key == "progressWindow") {
      target = &config.fill_progress_window;
    } else {
      return UnknownKeyError(path, {"ttl", "pollInterval", "waitTimeout", "progressWindow"});
    }
    ASSIGN_OR_RETURN(*target, YamlDuration(path, value));
    return absl::OkStatus();
  });
}

absl::Status ApplyListing(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("listing", node, [&](const std::string& path, const std::string& key,
                                           const YAML::Node& value) -> absl::Status {
    if (key == "maxTotalBytes") {
      ASSIGN_OR_RETURN(config.listing.max_total_bytes, YamlQuantity(path, value));
      if (config.listing.max_total_bytes < (1u << 20)) {
        return InvalidValueError(path, value.Scalar(), "want at least 1Mi");
      }
    } else if (key == "maxInFlight") {
      ASSIGN_OR_RETURN(uint64_t listings, YamlInteger(path, value, 1, 1024));
      config.listing.max_in_flight = static_cast<uint32_t>(listings);
    } else {
      return UnknownKeyError(path, {"maxTotalBytes", "maxInFlight"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyCoordinatorTls(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("coordinatorTls", node, [&](const std::string& path, const std::string& key,
                                                const YAML::Node& value) -> absl::Status {
    AgentConfig::CoordinatorTls& tls = config.coordinator_tls;
    if (key == "enabled") {
      ASSIGN_OR_RETURN(tls.enabled, YamlBool(path, value));
    } else if (key == "caFile") {
      ASSIGN_OR_RETURN(tls.ca_file, YamlScalar(path, value));
    } else if (key == "certFile") {
      ASSIGN_OR_RETURN(tls.cert_file, YamlScalar(path, value));
    } else if (key == "keyFile") {
      ASSIGN_OR_RETURN(tls.key_file, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"enabled", "caFile", "certFile", "keyFile"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyS3(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("s3", node, [&](const std::string& path, const std::string& key,
                                    const YAML::Node& value) -> absl::Status {
    if (key == "endpoint") {
      ASSIGN_OR_RETURN(config.s3.endpoint, YamlScalar(path, value));
    } else if (key == "region") {
      ASSIGN_OR_RETURN(config.s3.region, YamlScalar(path, value));
    } else if (key == "pathStyle") {
      ASSIGN_OR_RETURN(config.s3.path_style, YamlBool(path, value));
    } else if (key == "credentialsFile") {
      ASSIGN_OR_RETURN(config.s3.credentials_file, YamlScalar(path, value));
      config.s3.credentials_file_explicit = true;
    } else if (key == "profile") {
      ASSIGN_OR_RETURN(config.s3.profile, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"endpoint", "region", "pathStyle", "credentialsFile", "profile"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyScrub(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("scrub", node, [&](const std::string& path, const std::string& key,
                                       const YAML::Node& value) -> absl::Status {
    if (key == "every") {
      ASSIGN_OR_RETURN(config.scrub_every, YamlDuration(path, value, /*zero_allowed=*/true));
    } else if (key == "rate") {
      ASSIGN_OR_RETURN(config.scrub_bytes_per_second, YamlQuantity(path, value));
      if (config.scrub_bytes_per_second < (1u << 20)) {
        return InvalidValueError(path, value.Scalar(), "want at least 1Mi (bytes per second)");
      }
    } else {
      return UnknownKeyError(path, {"every", "rate"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyExtraVolumes(std::string_view path, const YAML::Node& node,
                               AgentConfig& config) {
  config.extra_volumes.clear();
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsSequence()) {
    return absl::InvalidArgumentError(fmt::format("{}: want a list of absolute paths", path));
  }
  for (const YAML::Node& item : node) {
    ASSIGN_OR_RETURN(std::string text, YamlScalar(path, item));
    std::filesystem::path volume(text);
    if (!volume.is_absolute()) return InvalidValueError(path, text, "want an absolute path");
    config.extra_volumes.push_back(std::move(volume));
  }
  return absl::OkStatus();
}

// A list of absolute folders, normalized (no trailing '/'), for fileSources.
absl::Status ApplyFileSources(std::string_view path, const YAML::Node& node, AgentConfig& config) {
  config.file_sources.clear();
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsSequence()) {
    return absl::InvalidArgumentError(fmt::format("{}: want a list of absolute paths", path));
  }
  for (const YAML::Node& item : node) {
    ASSIGN_OR_RETURN(std::string text, YamlScalar(path, item));
    std::filesystem::path folder = std::filesystem::path(text).lexically_normal();
    if (!folder.is_absolute()) return InvalidValueError(path, text, "want an absolute path");
    if (!folder.has_filename() && folder != folder.root_path()) folder = folder.parent_path();
    config.file_sources.push_back(std::move(folder));
  }
  return absl::OkStatus();
}

absl::Status ApplyNetwork(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("network", node, [&](const std::string& path, const std::string& key,
                                           const YAML::Node& value) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<std::string> items, YamlScalarList(path, value));
    if (key == "allow" || key == "deny") {
      std::vector<IpRange>& ranges = key == "allow" ? config.network.allow : config.network.deny;
      ranges.clear();
      for (const std::string& text : items) {
        absl::StatusOr<IpRange> range = ParseIpRange(text);
        if (!range.ok()) {
          return absl::InvalidArgumentError(fmt::format("{}: invalid range {}", path, range.status().message()));
        }
        ranges.push_back(*std::move(range));
      }
    } else if (key == "resolve") {
      for (const std::string& text : items) {
        if (absl::Status valid = ValidateResolveEntry(text); !valid.ok()) {
          return absl::InvalidArgumentError(fmt::format("{}: invalid entry {}", path, valid.message()));
        }
      }
      config.network.resolve = std::move(items);
    } else {
      return UnknownKeyError(path, {"allow", "deny", "resolve"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyHf(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("hf", node, [&](const std::string& path, const std::string& key,
                                      const YAML::Node& value) -> absl::Status {
    if (key == "endpoint") {
      ASSIGN_OR_RETURN(config.hf.endpoint, YamlScalar(path, value));
      if (config.hf.endpoint.rfind("http://", 0) != 0 && config.hf.endpoint.rfind("https://", 0) != 0) {
        return InvalidValueError(path, config.hf.endpoint, "want an http:// or https:// URL");
      }
    } else if (key == "tokenFile") {
      ASSIGN_OR_RETURN(config.hf.token_file, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"endpoint", "tokenFile"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyOci(const YAML::Node& node, AgentConfig& config) {
  return ForEachField("oci", node, [&](const std::string& path, const std::string& key,
                                       const YAML::Node& value) -> absl::Status {
    if (key == "insecureRegistries") {
      ASSIGN_OR_RETURN(std::vector<std::string> items, YamlScalarList(path, value));
      for (std::string& item : items) {
        item = absl::AsciiStrToLower(item);
        if (item.empty() || item.find_first_of("/ ") != std::string::npos) {
          return InvalidValueError(path, item, "want host[:port] of a registry");
        }
      }
      config.oci.insecure_registries = std::move(items);
    } else if (key == "dockerConfig") {
      ASSIGN_OR_RETURN(config.oci.docker_config, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"insecureRegistries", "dockerConfig"});
    }
    return absl::OkStatus();
  });
}

absl::Status ApplyTopLevel(const YAML::Node& root, AgentConfig& config) {
  return ForEachField("", root, [&](const std::string& path, const std::string& key,
                                  const YAML::Node& value) -> absl::Status {
    if (key == "cacheRoot") {
      ASSIGN_OR_RETURN(std::string text, YamlScalar(path, value));
      config.cache_root = text;
    } else if (key == "socket") {
      ASSIGN_OR_RETURN(config.socket, YamlScalar(path, value));
    } else if (key == "listenTcp") {
      ASSIGN_OR_RETURN(config.listen_tcp, YamlScalar(path, value));
    } else if (key == "metricsAddress") {
      ASSIGN_OR_RETURN(config.metrics_address, YamlScalar(path, value));
    } else if (key == "nodeName") {
      ASSIGN_OR_RETURN(config.node_name, YamlScalar(path, value));
    } else if (key == "coordinator") {
      ASSIGN_OR_RETURN(config.coordinator, YamlScalar(path, value));
    } else if (key == "coordinatorToken") {
      ASSIGN_OR_RETURN(config.coordinator_token, YamlScalar(path, value));
    } else if (key == "coordinatorTokenFile") {
      ASSIGN_OR_RETURN(config.coordinator_token_file, YamlScalar(path, value));
    } else if (key == "log") {
      return ApplyLog(value, config);
    } else if (key == "fill") {
      return ApplyFill(value, config);
    } else if (key == "fillLease") {
      return ApplyFillLease(value, config);
    } else if (key == "listing") {
      return ApplyListing(value, config);
    } else if (key == "coordinatorTls") {
      return ApplyCoordinatorTls(value, config);
    } else if (key == "s3") {
      return ApplyS3(value, config);
    } else if (key == "leaseTtl") {
      ASSIGN_OR_RETURN(config.lease_ttl, YamlDuration(path, value));
    } else if (key == "coordinatorReportInterval") {
      ASSIGN_OR_RETURN(config.coordinator_report_interval, YamlDuration(path, value));
    } else if (key == "stateDir") {
      ASSIGN_OR_RETURN(std::string text, YamlScalar(path, value));
      config.state_dir = text;
    } else if (key == "modelsCacheStorage") {
      ASSIGN_OR_RETURN(config.storage, ParseStorageConfig(value));
      config.caching_enabled = config.storage.enabled;
    } else if (key == "extraVolumes") {
      return ApplyExtraVolumes(path, value, config);
    } else if (key == "fileSources") {
      return ApplyFileSources(path, value, config);
    } else if (key == "network") {
      return ApplyNetwork(value, config);
    } else if (key == "hf") {
      return ApplyHf(value, config);
    } else if (key == "oci") {
      return ApplyOci(value, config);
    } else if (key == "scrub") {
      return ApplyScrub(value, config);
    } else if (key == "kubernetes") {
      ASSIGN_OR_RETURN(config.kubernetes, pod_leases::ParsePodLeasesConfig(value));
    } else if (key == "testOnlyFilesystemType") {
      ASSIGN_OR_RETURN(config.test_only_filesystem_type, YamlScalar(path, value));
    } else {
      return UnknownKeyError(path, {"cacheRoot", "socket", "listenTcp", "metricsAddress", "nodeName",
                               "coordinator", "coordinatorToken", "coordinatorTokenFile", "log",
                               "fill", "fillLease", "listing", "s3", "modelsCacheStorage",
                               "extraVolumes",
                               "scrub", "testOnlyFilesystemType", "leaseTtl", "stateDir",
                               "coordinatorReportInterval", "coordinatorTls", "fileSources",
                               "network", "hf", "oci", "kubernetes"});
    }
    return absl::OkStatus();
  });
}

void ApplyFlags(const AgentFlags& flags, AgentConfig& config) {
  if (flags.cache_root) config.cache_root = *flags.cache_root;
  if (flags.socket) config.socket = *flags.socket;
  if (flags.listen_tcp) config.listen_tcp = *flags.listen_tcp;
  if (flags.metrics_address) config.metrics_address = *flags.metrics_address;
  if (flags.node_name) config.node_name = *flags.node_name;
  if (flags.log_level) config.log_level = *flags.log_level;
  if (flags.log_json) config.log_json = *flags.log_json;
}

// "host:port" with a numeric port; "" is allowed when `optional`.
absl::Status ValidateHostPort(std::string_view key, std::string_view value) {
  size_t colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InvalidValueError(key, value, "want host:port");
  }
  std::string_view port_text = value.substr(colon + 1);
  unsigned port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return InvalidValueError(key, value, "want host:port with a port of 0..65535");
  }
  return absl::OkStatus();
}

absl::Status Validate(AgentConfig& config) {
  if (config.cache_root.empty()) {
    return absl::InvalidArgumentError("cacheRoot: required (set it in the file or --cache-root)");
  }
  if (!config.cache_root.is_absolute()) {
    return InvalidValueError("cacheRoot", config.cache_root.string(), "want an absolute path");
  }
  if (config.socket.empty() || config.socket.front() != '/') {
    return InvalidValueError("socket", config.socket, "want an absolute path");
  }
  if (config.socket.size() > kMaxSocketPathLength) {
    return InvalidValueError("socket", config.socket,
                             fmt::format("longer than {} bytes", kMaxSocketPathLength));
  }
  if (!config.listen_tcp.empty()) RETURN_IF_ERROR(ValidateHostPort("listenTcp", config.listen_tcp));
  if (!config.metrics_address.empty()) {
    RETURN_IF_ERROR(ValidateHostPort("metricsAddress", config.metrics_address));
  }
  if (!config.coordinator.empty()) RETURN_IF_ERROR(ValidateHostPort("coordinator", config.coordinator));
  if (!config.coordinator_token.empty() && !config.coordinator_token_file.empty()) {
    return InvalidValueError("coordinatorTokenFile", config.coordinator_token_file,
                             "set coordinatorToken or coordinatorTokenFile, not both");
  }
  const AgentConfig::CoordinatorTls& tls = config.coordinator_tls;
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    const bool key_alone = tls.cert_file.empty();
    return InvalidValueError(key_alone ? "coordinatorTls.keyFile" : "coordinatorTls.certFile",
                             key_alone ? tls.key_file : tls.cert_file,
                             "set certFile and keyFile together");
  }
  if (!tls.cert_file.empty() && !tls.enabled && tls.ca_file.empty()) {
    return InvalidValueError("coordinatorTls.certFile", tls.cert_file,
                             "a client certificate needs TLS: set enabled: true or caFile");
  }
  static constexpr std::string_view kLevels[] = {"trace", "debug", "info",   "warn",
                                                 "error", "critical", "off"};
  if (std::find(std::begin(kLevels), std::end(kLevels), config.log_level) == std::end(kLevels)) {
    return InvalidValueError("log.level", config.log_level,
                             "want trace, debug, info, warn, error, critical or off");
  }
  if (!config.s3.endpoint.empty() && config.s3.endpoint.rfind("http://", 0) != 0 &&
      config.s3.endpoint.rfind("https://", 0) != 0) {
    return InvalidValueError("s3.endpoint", config.s3.endpoint, "want an http:// or https:// URL");
  }
  if (config.s3.region.empty()) return InvalidValueError("s3.region", "", "must not be empty");
  for (const std::filesystem::path& volume : config.extra_volumes) {
    if (volume.lexically_normal() == config.cache_root.lexically_normal()) {
      return InvalidValueError("extraVolumes", volume.string(), "is cacheRoot itself");
    }
  }
  if (config.state_dir.empty()) {
    config.state_dir = CacheLayout(config.cache_root).AgentStateDir(config.node_name);
  } else if (!config.state_dir.is_absolute()) {
    return InvalidValueError("stateDir", config.state_dir.string(), "want an absolute path");
  }
  return absl::OkStatus();
}

}  // namespace

ModelCacheOptions AgentConfig::ToModelCacheOptions() const {
  ModelCacheOptions options;
  options.cache_root = cache_root;
  options.quota_bytes = storage.storage_size_bytes;
  options.fill = fill;
  options.sources.s3_endpoint = s3.endpoint;
  options.sources.s3_region = s3.region;
  options.sources.s3_path_style = s3.path_style;
  options.sources.aws = aws;
  options.sources.file_roots = file_sources;
  options.sources.network = network;
  options.sources.hf_endpoint = hf.endpoint;
  options.sources.hf_token = hf.token;
  options.sources.oci_insecure_registries = oci.insecure_registries;
  options.sources.docker_config_json = oci.docker_config_json;
  return options;
}

std::string DefaultCredentialsFile(const ProcessEnvironment& environment) {
  std::string explicit_file = environment.Get("AWS_SHARED_CREDENTIALS_FILE");
  if (!explicit_file.empty()) return explicit_file;
  std::string home = environment.Get("HOME");
  return home.empty() ? std::string() : home + "/.aws/credentials";
}

void AddAgentFlags(CLI::App& app, AgentFlags& flags) {
  app.add_option("--config", flags.config_file, "YAML configuration file");
  app.add_option("--cache-root", flags.cache_root, "Cache volume root (cacheRoot)");
  app.add_option("--socket", flags.socket, "Unix socket for pods (socket)");
  app.add_option("--listen-tcp", flags.listen_tcp, "Also listen on host:port (listenTcp)");
  app.add_option("--metrics-address", flags.metrics_address,
                 "host:port for /metrics, /healthz, /readyz; empty disables (metricsAddress)");
  app.add_option("--node-name", flags.node_name, "This node's name (nodeName)");
  app.add_option("--log-level", flags.log_level, "trace|debug|info|warn|error|critical|off");
  // A callback, not add_flag on the optional: CLI11 sets such an optional to false when the
  // flag is absent, which overrode log.json and MODELCACHE_LOG_JSON.
  app.add_flag_callback("--log-json", [&flags] { flags.log_json = true; }, "Log JSON lines");
}

absl::StatusOr<AgentConfig> ParseAgentConfig(std::string_view yaml_text, const AgentFlags& flags,
                                             const ProcessEnvironment& environment) {
  AgentConfig config;
  config.s3.credentials_file = DefaultCredentialsFile(environment);
  config.node_name = environment.Get("NODE_NAME");
  if (config.node_name.empty()) config.node_name = environment.hostname;

  // Duplicate keys are refused at any depth: the last copy must not win in silence.
  ASSIGN_OR_RETURN(YAML::Node root, LoadConfigYaml(yaml_text));
  RETURN_IF_ERROR(ApplyTopLevel(root, config));
  // hf:// as the official clients configure it: HF_ENDPOINT picks a mirror, HF_TOKEN (or the
  // older HUGGING_FACE_HUB_TOKEN) the token; the file's keys win.
  if (config.hf.endpoint.empty()) config.hf.endpoint = environment.Get("HF_ENDPOINT");
  if (config.hf.endpoint.empty()) config.hf.endpoint = "https://huggingface.co";
  if (config.hf.endpoint.rfind("http://", 0) != 0 && config.hf.endpoint.rfind("https://", 0) != 0) {
    return InvalidValueError("hf.endpoint", config.hf.endpoint, "want an http:// or https:// URL (from HF_ENDPOINT)");
  }
  config.hf.token = environment.Get("HF_TOKEN");
  if (config.hf.token.empty()) config.hf.token = environment.Get("HUGGING_FACE_HUB_TOKEN");
  RETURN_IF_ERROR(ApplyLogEnvironment(environment.Get(kLogLevelVariable),
                                      environment.Get(kLogJsonVariable), config.log_level,
                                      config.log_json));
  ApplyFlags(flags, config);
  config.kubernetes.environment = kube::KubeEnvironment::FromLookup(
      [&environment](const char* name) { return environment.Lookup(name); });
  RETURN_IF_ERROR(Validate(config));
  return config;
}

absl::StatusOr<AwsCredentials> LoadAwsCredentials(const S3Config& s3,
                                                  const ProcessEnvironment& environment) {
  std::string file_text;
  if (!s3.credentials_file.empty()) {
    absl::StatusOr<std::string> text = ReadFileToString(s3.credentials_file);
    if (text.ok()) {
      file_text = *std::move(text);
    } else if (s3.credentials_file_explicit || !absl::IsNotFound(text.status())) {
      return InvalidValueError("s3.credentialsFile", s3.credentials_file,
                               std::string(text.status().message()));
    }
  }
  return ResolveAwsCredentials(environment.variables, file_text, s3.profile);
}

absl::StatusOr<AgentConfig> LoadAgentConfig(const AgentFlags& flags,
                                            const ProcessEnvironment& environment) {
  std::string yaml_text;
  if (flags.config_file) {
    absl::StatusOr<std::string> text = ReadFileToString(*flags.config_file);
    if (!text.ok()) {
      return Annotate(text.status(), "config file");
    }
    yaml_text = *std::move(text);
  }
  ASSIGN_OR_RETURN(AgentConfig config, ParseAgentConfig(yaml_text, flags, environment));
  if (!config.coordinator_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFileToString(config.coordinator_token_file);
    if (!token.ok()) {
      return InvalidValueError("coordinatorTokenFile", config.coordinator_token_file,
                               std::string(token.status().message()));
    }
    while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back()))) {
      token->pop_back();
    }
    config.coordinator_token = *std::move(token);
  }
  AgentConfig::CoordinatorTls& tls = config.coordinator_tls;
  for (auto [key, file, pem] : {std::tuple{"coordinatorTls.caFile", &tls.ca_file, &tls.ca_pem},
                                std::tuple{"coordinatorTls.certFile", &tls.cert_file, &tls.cert_pem},
                                std::tuple{"coordinatorTls.keyFile", &tls.key_file, &tls.key_pem}}) {
    if (file->empty()) continue;
    absl::StatusOr<std::string> contents = ReadFileToString(*file);
    if (!contents.ok()) {
      return InvalidValueError(key, *file, std::string(contents.status().message()));
    }
    *pem = *std::move(contents);
  }
  absl::StatusOr<AwsCredentials> aws = LoadAwsCredentials(config.s3, environment);
  if (!aws.ok()) {
    return Annotate(aws.status(), "s3 credentials");
  }
  config.aws = *std::move(aws);
  if (!config.hf.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFileToString(config.hf.token_file);
    if (!token.ok()) return InvalidValueError("hf.tokenFile", config.hf.token_file, std::string(token.status().message()));
    while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back()))) token->pop_back();
    config.hf.token = *std::move(token);
  }
  if (!config.oci.docker_config.empty()) {
    absl::StatusOr<std::string> json = ReadFileToString(config.oci.docker_config);
    if (!json.ok()) return InvalidValueError("oci.dockerConfig", config.oci.docker_config, std::string(json.status().message()));
    if (auto parsed = ParseDockerConfig(*json, "oci.dockerConfig"); !parsed.ok()) {
      return InvalidValueError("oci.dockerConfig", config.oci.docker_config, std::string(parsed.status().message()));
    }
    config.oci.docker_config_json = *std::move(json);
  }
  return config;
}

}  // namespace modelcache
