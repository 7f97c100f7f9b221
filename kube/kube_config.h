#pragma once
// Where the API server is and how to prove who we are, found the way Kubernetes clients find
// it (controller-runtime's order):
//   1. the kubeconfig file the caller names (a --kubeconfig flag), alone;
//   2. $KUBECONFIG: a ':'-separated list of files, merged as kubectl merges them (the first
//      file to name a cluster, user, context or current-context wins; missing files skipped);
//   3. in-cluster: $KUBERNETES_SERVICE_HOST and _PORT, with the ServiceAccount's token, CA and
//      namespace from the service-account directory;
//   4. ~/.kube/config.
// The environment is an input (KubeEnvironment), read by the caller's main once. Nothing here
// reads a variable itself.
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache::kube {

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct KubeEnvironment {
  std::string kubernetes_service_host;  // $KUBERNETES_SERVICE_HOST
  std::string kubernetes_service_port;  // $KUBERNETES_SERVICE_PORT
  std::string kubeconfig;               // $KUBECONFIG
  std::string home;                     // $HOME
  // token, ca.crt and namespace (tests point this elsewhere).
  std::filesystem::path service_account_dir = kServiceAccountDir;

  // Fills the variables through `lookup` (std::getenv in a main; nullptr means unset).
  static KubeEnvironment FromLookup(const std::function<const char*(const char*)>& lookup);
};

struct KubeConfig {
  std::string server;  // "https://10.96.0.1:443"
  // PEM of the CAs that sign the server's certificate; empty: the system's CAs.
  std::string certificate_authority_pem;
  bool insecure_skip_tls_verify = false;  // only when the kubeconfig says so
  // Bearer token: `token` as given, or the contents of `token_file`, re-read when the file
  // changes (bound ServiceAccount tokens rotate) and after a 401.
  std::string token;
  std::filesystem::path token_file;
  // Client certificate and key (PEM), for kubeconfigs that authenticate by certificate.
  std::string client_certificate_pem;
  std::string client_key_pem;
  std::string default_namespace = "default";  // the context's namespace, or the pod's
  // Where it came from, for logs: "in-cluster (/var/run/...)",
  // "kubeconfig /home/x/.kube/config, context kind-dev".
  std::string origin;
};

struct KubeConfigRequest {
  std::filesystem::path kubeconfig;  // --kubeconfig; empty: look as above
  std::string context;               // --context; empty: the current-context
};

// Finds and loads the configuration. NOT_FOUND naming every place looked at when there is
// none; INVALID_ARGUMENT naming the file and key for a bad one; UNIMPLEMENTED naming the key
// for authentication this client does not do (exec plugins, auth providers, basic auth).
absl::StatusOr<KubeConfig> LoadKubeConfig(const KubeConfigRequest& request, const KubeEnvironment& environment);

// In-cluster configuration alone. NOT_FOUND when the variables are unset.
absl::StatusOr<KubeConfig> LoadInClusterConfig(const KubeEnvironment& environment);

// A kubeconfig from files, merged in order (see above). Relative file paths in a file are
// relative to that file's directory, as kubectl reads them.
absl::StatusOr<KubeConfig> LoadKubeconfigFiles(const std::vector<std::filesystem::path>& files,
                                               std::string_view context);

}  // namespace modelcache::kube
