#pragma once
// The coordinator's configuration: one YAML file, the same format as the agent's.
//   modelsCacheStorage: {...}            # common/storage_config.h (quota, purge intervals)
//   coordinator:
//     listen: 0.0.0.0:7070
//     database: /var/lib/modelcache/coordinator.db
//     tokensFile: /etc/modelcache/tokens   # checked first; empty: none
//     kubernetesAuth: {...}                # coordinator/kube_auth/kube_auth_config.h (reviews)
//     # neither: no authentication (development only)
//     highWatermark: 0.9                   # quota purge starts above this share of storageSize
//     lowWatermark: 0.8                    # ... and stops at or below this one
//     defaultCaching: disabled             # enabled | disabled, for models without a setting
//     maxThreads: 512                      # gRPC threads for admin RPCs (agent streams need none)
//     tls: {cert: server.pem, key: server.key, clientCa: ca.pem}   # optional
//     metricsAddress: 127.0.0.1:9102       # optional: /metrics, /healthz, /readyz
//     log: {level: info, json: false}      # MODELCACHE_LOG_LEVEL/_JSON and flags override
//   kubernetes: {...}                      # coordinator/claims/claims_config.h (cache claim copies)
//   webhook: {...}                         # coordinator/webhook/webhook_config.h (admission webhook)
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/environment.h"
#include "common/storage_config.h"
#include "coordinator/claims/claims_config.h"
#include "coordinator/kube_auth/kube_auth_config.h"
#include "coordinator/webhook/webhook_config.h"

namespace CLI {
class App;
}  // namespace CLI

namespace modelcache {

struct CoordinatorTlsConfig {
  std::string cert_file;       // PEM; empty: plaintext
  std::string key_file;
  std::string client_ca_file;  // empty: clients are not asked for certificates
};

struct CoordinatorConfig {
  StorageConfig storage;
  std::string listen = "0.0.0.0:7070";
  std::string database = "coordinator.db";
  std::string tokens_file;
  kube_auth::KubernetesAuthConfig kubernetes_auth;
  double high_watermark = 0.9;
  double low_watermark = 0.8;
  bool default_caching_enabled = false;
  int max_threads = 512;
  CoordinatorTlsConfig tls;
  std::string metrics_address;
  std::string log_level = "info";
  bool log_json = false;
  claims::KubernetesConfig kubernetes;
  webhook::WebhookConfig webhook;
};

// Parses a whole YAML document. INVALID_ARGUMENT naming the key and the value for a bad
// value, an unknown key, watermarks outside (0, 1] or low > high, tls with a cert but no key.
absl::StatusOr<CoordinatorConfig> ParseCoordinatorConfig(std::string_view yaml_text);

// Reads and parses `path`; errors name the file.
absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path);

// Command-line settings; the log flags, when given, override the file and the environment.
struct CoordinatorFlags {
  std::string config_file;               // --config (required)
  std::optional<std::string> log_level;  // --log-level
  bool log_json = false;                 // --log-json
};

// Registers --config, --log-level and --log-json on `app`, writing into `flags` (which must
// outlive parsing).
void AddCoordinatorFlags(CLI::App& app, CoordinatorFlags& flags);

// The configuration the coordinator runs with, merged as the agent's is: the file
// (flags.config_file), then MODELCACHE_LOG_LEVEL / MODELCACHE_LOG_JSON from `environment`,
// then the flags; the Kubernetes client's variables (kube::KubeEnvironment) come from
// `environment` too. INVALID_ARGUMENT names a bad variable.
absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const CoordinatorFlags& flags,
                                                        const ProcessEnvironment& environment);

}  // namespace modelcache
