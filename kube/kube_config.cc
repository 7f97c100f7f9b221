#include "kube/kube_config.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <system_error>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::kube {
namespace {

namespace fs = std::filesystem;

// One named entry (cluster, user or context) and the file it came from, for relative paths
// and error messages.
struct Entry {
  YAML::Node body;
  fs::path file;
};

struct MergedKubeconfig {
  std::map<std::string, Entry> clusters;
  std::map<std::string, Entry> users;
  std::map<std::string, Entry> contexts;
  std::string current_context;
  std::vector<fs::path> files;  // those that existed, in order
};

std::string Scalar(const YAML::Node& node, const char* key) {
  const YAML::Node value = node[key];
  if (!value || !value.IsScalar()) return "";
  return value.as<std::string>();
}

// Adds the entries of one list ("clusters", "users", "contexts"), keeping earlier ones.
absl::Status MergeList(const YAML::Node& root, const char* list, const char* body_key, const fs::path& file,
                       std::map<std::string, Entry>& into) {
  const YAML::Node entries = root[list];
  if (!entries || entries.IsNull()) return absl::OkStatus();
  if (!entries.IsSequence()) {
    return absl::InvalidArgumentError(fmt::format("kubeconfig {}: {} must be a list", file.string(), list));
  }
  for (const YAML::Node& entry : entries) {
    const std::string name = entry.IsMap() ? Scalar(entry, "name") : "";
    if (name.empty()) {
      return absl::InvalidArgumentError(fmt::format("kubeconfig {}: an entry of {} has no name", file.string(), list));
    }
    YAML::Node body = entry[body_key];
    if (!body || !body.IsMap()) {
      return absl::InvalidArgumentError(
          fmt::format("kubeconfig {}: {} \"{}\" has no {} map", file.string(), list, name, body_key));
    }
    into.emplace(name, Entry{body, file});
  }
  return absl::OkStatus();
}

absl::Status MergeFile(const fs::path& file, MergedKubeconfig& merged) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(file));
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(fmt::format("kubeconfig {}: not YAML: {}", file.string(), error.what()));
  }
  if (root.IsNull()) return absl::OkStatus();  // an empty file, as kubectl allows
  if (!root.IsMap()) return absl::InvalidArgumentError(fmt::format("kubeconfig {}: not a map", file.string()));
  RETURN_IF_ERROR(MergeList(root, "clusters", "cluster", file, merged.clusters));
  RETURN_IF_ERROR(MergeList(root, "users", "user", file, merged.users));
  RETURN_IF_ERROR(MergeList(root, "contexts", "context", file, merged.contexts));
  if (merged.current_context.empty()) merged.current_context = Scalar(root, "current-context");
  return absl::OkStatus();
}

fs::path Resolve(const fs::path& file, const std::string& path) {
  fs::path value(path);
  return value.is_absolute() ? value : file.parent_path() / value;
}

// `key`-data (base64) when present, else the file named by `key`; "" when neither.
absl::StatusOr<std::string> DataOrFile(const Entry& entry, const std::string& what, const char* key) {
  const std::string data = Scalar(entry.body, (std::string(key) + "-data").c_str());
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::InvalidArgumentError(
          fmt::format("kubeconfig {}: {}: {}-data is not base64", entry.file.string(), what, key));
    }
    return decoded;
  }
  const std::string path = Scalar(entry.body, key);
  if (path.empty()) return std::string();
  auto contents = ReadFileToString(Resolve(entry.file, path));
  if (!contents.ok()) {
    return absl::Status(contents.status().code(), fmt::format("kubeconfig {}: {}: {}: {}", entry.file.string(),
                                                              what, key, contents.status().message()));
  }
  return contents;
}

absl::Status Unsupported(const Entry& entry, const std::string& what, const char* key) {
  return absl::UnimplementedError(fmt::format(
      "kubeconfig {}: {}: \"{}\" is not supported by modelcache's Kubernetes client (use a token, a token "
      "file or a client certificate)", entry.file.string(), what, key));
}

absl::StatusOr<KubeConfig> Build(const MergedKubeconfig& merged, std::string_view context_flag) {
  std::string files;
  for (const fs::path& file : merged.files) files += (files.empty() ? "" : ", ") + file.string();
  const std::string context_name = context_flag.empty() ? merged.current_context : std::string(context_flag);
  if (context_name.empty()) {
    return absl::InvalidArgumentError(fmt::format("kubeconfig {}: no current-context and no context chosen", files));
  }
  auto context = merged.contexts.find(context_name);
  if (context == merged.contexts.end()) {
    return absl::InvalidArgumentError(fmt::format("kubeconfig {}: context \"{}\" not found", files, context_name));
  }
  const std::string cluster_name = Scalar(context->second.body, "cluster");
  auto cluster = merged.clusters.find(cluster_name);
  if (cluster == merged.clusters.end()) {
    return absl::InvalidArgumentError(fmt::format("kubeconfig {}: context \"{}\": cluster \"{}\" not found", files,
                                                  context_name, cluster_name));
  }
  KubeConfig config;
  config.origin = fmt::format("kubeconfig {}, context {}", files, context_name);
  const std::string cluster_what = fmt::format("cluster \"{}\"", cluster_name);
  config.server = Scalar(cluster->second.body, "server");
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return absl::InvalidArgumentError(fmt::format("kubeconfig {}: {}: server \"{}\" is not an http(s) URL",
                                                  cluster->second.file.string(), cluster_what, config.server));
  }
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  for (const char* key : {"proxy-url", "tls-server-name"}) {
    if (!Scalar(cluster->second.body, key).empty()) return Unsupported(cluster->second, cluster_what, key);
  }
  ASSIGN_OR_RETURN(config.certificate_authority_pem, DataOrFile(cluster->second, cluster_what, "certificate-authority"));
  // Only an explicit `true` turns verification off.
  const YAML::Node insecure = cluster->second.body["insecure-skip-tls-verify"];
  if (insecure && insecure.IsScalar()) {
    bool value = false;
    if (!YAML::convert<bool>::decode(insecure, value)) {
      return absl::InvalidArgumentError(fmt::format("kubeconfig {}: {}: insecure-skip-tls-verify \"{}\" is not a boolean",
                                                    cluster->second.file.string(), cluster_what, insecure.as<std::string>()));
    }
    config.insecure_skip_tls_verify = value;
  }
  if (config.insecure_skip_tls_verify && !config.certificate_authority_pem.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "kubeconfig {}: {}: certificate-authority and insecure-skip-tls-verify together (kubectl refuses it too)",
        cluster->second.file.string(), cluster_what));
  }

  const std::string user_name = Scalar(context->second.body, "user");
  if (!user_name.empty()) {
    auto user = merged.users.find(user_name);
    if (user == merged.users.end()) {
      return absl::InvalidArgumentError(fmt::format("kubeconfig {}: context \"{}\": user \"{}\" not found", files,
                                                    context_name, user_name));
    }
    const std::string user_what = fmt::format("user \"{}\"", user_name);
    for (const char* key : {"exec", "auth-provider", "username", "password", "as", "as-groups"}) {
      if (user->second.body[key]) return Unsupported(user->second, user_what, key);
    }
    config.token = Scalar(user->second.body, "token");
    const std::string token_file = Scalar(user->second.body, "tokenFile");
    if (config.token.empty() && !token_file.empty()) config.token_file = Resolve(user->second.file, token_file);
    ASSIGN_OR_RETURN(config.client_certificate_pem, DataOrFile(user->second, user_what, "client-certificate"));
    ASSIGN_OR_RETURN(config.client_key_pem, DataOrFile(user->second, user_what, "client-key"));
    if (config.client_certificate_pem.empty() != config.client_key_pem.empty()) {
      return absl::InvalidArgumentError(fmt::format("kubeconfig {}: {}: a client certificate needs both "
                                                    "client-certificate(-data) and client-key(-data)",
                                                    user->second.file.string(), user_what));
    }
  }
  const std::string namespace_name = Scalar(context->second.body, "namespace");
  if (!namespace_name.empty()) config.default_namespace = namespace_name;
  return config;
}

}  // namespace

KubeEnvironment KubeEnvironment::FromLookup(const std::function<const char*(const char*)>& lookup) {
  auto get = [&](const char* name) {
    const char* value = lookup(name);
    return value == nullptr ? std::string() : std::string(value);
  };
  KubeEnvironment environment;
  environment.kubernetes_service_host = get("KUBERNETES_SERVICE_HOST");
  environment.kubernetes_service_port = get("KUBERNETES_SERVICE_PORT");
  environment.kubeconfig = get("KUBECONFIG");
  environment.home = get("HOME");
  return environment;
}

absl::StatusOr<KubeConfig> LoadInClusterConfig(const KubeEnvironment& environment) {
  if (environment.kubernetes_service_host.empty() || environment.kubernetes_service_port.empty()) {
    return absl::NotFoundError("kubernetes: not in a cluster (KUBERNETES_SERVICE_HOST or _PORT unset)");
  }
  KubeConfig config;
  const std::string& host = environment.kubernetes_service_host;
  // An IPv6 address needs brackets in a URL.
  config.server = host.find(':') != std::string::npos
                      ? fmt::format("https://[{}]:{}", host, environment.kubernetes_service_port)
                      : fmt::format("https://{}:{}", host, environment.kubernetes_service_port);
  const fs::path dir = environment.service_account_dir;
  config.token_file = dir / "token";
  std::error_code error;
  if (!fs::is_regular_file(config.token_file, error)) {
    return absl::FailedPreconditionError(fmt::format(
        "kubernetes: in a cluster (KUBERNETES_SERVICE_HOST={}) but no ServiceAccount token at {} "
        "(automountServiceAccountToken false?)", host, config.token_file.string()));
  }
  auto ca = ReadFileToString(dir / "ca.crt");
  if (!ca.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("kubernetes: in-cluster CA: {}", ca.status().message()));
  }
  config.certificate_authority_pem = std::move(*ca);
  if (auto namespace_name = ReadFileToString(dir / "namespace"); namespace_name.ok()) {
    std::string value = *namespace_name;
    while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
    if (!value.empty()) config.default_namespace = value;
  }
  config.origin = fmt::format("in-cluster (ServiceAccount {})", dir.string());
  return config;
}

absl::StatusOr<KubeConfig> LoadKubeconfigFiles(const std::vector<fs::path>& files, std::string_view context) {
  MergedKubeconfig merged;
  for (const fs::path& file : files) {
    std::error_code error;
    if (!fs::exists(file, error)) continue;  // kubectl skips missing files of $KUBECONFIG
    RETURN_IF_ERROR(MergeFile(file, merged));
    merged.files.push_back(file);
  }
  if (merged.files.empty()) {
    std::string names;
    for (const fs::path& file : files) names += (names.empty() ? "" : ", ") + file.string();
    return absl::NotFoundError(fmt::format("kubernetes: no kubeconfig file exists ({})", names));
  }
  return Build(merged, context);
}

absl::StatusOr<KubeConfig> LoadKubeConfig(const KubeConfigRequest& request, const KubeEnvironment& environment) {
  if (!request.kubeconfig.empty()) {
    std::error_code error;
    if (!fs::exists(request.kubeconfig, error)) {
      return absl::NotFoundError(fmt::format("kubernetes: --kubeconfig {} does not exist", request.kubeconfig.string()));
    }
    return LoadKubeconfigFiles({request.kubeconfig}, request.context);
  }
  if (!environment.kubeconfig.empty()) {
    std::vector<fs::path> files;
    for (absl::string_view part : absl::StrSplit(environment.kubeconfig, ':', absl::SkipEmpty())) {
      files.emplace_back(std::string(part));
    }
    return LoadKubeconfigFiles(files, request.context);
  }
  if (!environment.kubernetes_service_host.empty()) return LoadInClusterConfig(environment);
  if (!environment.home.empty()) {
    const fs::path home_config = fs::path(environment.home) / ".kube" / "config";
    std::error_code error;
    if (fs::exists(home_config, error)) return LoadKubeconfigFiles({home_config}, request.context);
  }
  return absl::NotFoundError(fmt::format(
      "kubernetes: no configuration: no --kubeconfig, $KUBECONFIG unset, not in a cluster "
      "(KUBERNETES_SERVICE_HOST unset), no {}/.kube/config", environment.home.empty() ? "$HOME" : environment.home));
}

}  // namespace modelcache::kube
