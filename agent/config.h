#pragma once
// The agent's configuration: one struct, filled from the YAML file, the flags and the
// environment here and nowhere else. The rest of the agent receives the struct (or the part
// it needs) and never reads the environment or a file itself.
//
// Longer than a header should be: the key list below and the struct are the agent's whole
// configuration in one place, which is worth more than a split across files.
//
// YAML keys (camelCase), with their defaults:
//   cacheRoot: /var/cache/modelcache     # required
//   socket: /run/modelcache/agent.sock
//   listenTcp: ""                        # host:port, optional
//   metricsAddress: 0.0.0.0:9464         # /metrics, /healthz, /readyz; "" disables
//   nodeName: $NODE_NAME or the hostname
//   coordinator: ""                      # host:port; "" runs without one
//   coordinatorToken: ""                 # bearer token (role agent) for the coordinator
//   coordinatorTokenFile: ""             # ... or a file holding it, re-read when it changes (projected tokens rotate)
//   coordinatorReportInterval: 10s       # usage delta / heartbeat to the coordinator
//   coordinatorTls: {enabled: false, caFile: "", certFile: "", keyFile: ""}  # TLS to it
//   log: {level: info, json: false}
//   fill: {concurrency: 16, chunkSize: 8Mi, stallTimeout: 30s, maxAttempts: 6}
//   fillLease: {ttl: 30s, pollInterval: 1s, waitTimeout: 2h,   # cross-node single flight
//               progressWindow: 5m}
//   listing: {maxTotalBytes: 256Mi, maxInFlight: 8}   # memory for source listings, all fills
//   hf: {endpoint: $HF_ENDPOINT or https://huggingface.co,   # hf:// sources
//        tokenFile: ""}                   # else $HF_TOKEN; the token goes to the Hub only
//   oci: {insecureRegistries: [],        # plain-HTTP registries besides those on loopback
//         dockerConfig: ""}              # a docker config.json with registry credentials
//   s3: {endpoint: "", region: us-east-1, pathStyle: false,
//        credentialsFile: $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile: ""}
//   modelsCacheStorage: {...}            # common/storage_config.h; storageSize is the quota
//   extraVolumes: []                     # more cache volumes this agent mounts (migrate, cleanup)
//   fileSources: []                      # folders file:// sources may be read from; none: no file://
//   network: {allow: [], deny: [],       # CIDR ranges: allowed despite the built-in denied ones
//             resolve: []}               #   (loopback, link-local, metadata), denied too; pinned names
//   scrub: {every: 0s, rate: 64Mi}       # periodic re-hash of published models; 0s: off
//   testOnlyFilesystemType: ""           # TESTS ONLY: pretend cacheRoot has this statfs type
//   leaseTtl: 10m                        # a pod's lease on a model lasts this long unless renewed
//   stateDir: <cacheRoot>/agents/<nodeName>  # command answers, last caching policy
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/fill/fill_settings.h"
#include "agent/model_cache.h"
#include "agent/pod_leases/pod_leases_config.h"
#include "agent/source/listing_budget.h"
#include "agent/source/source.h"
#include "common/environment.h"
#include "common/pod_lease_ttl.h"
#include "common/storage_config.h"

namespace CLI {
class App;
}  // namespace CLI

namespace modelcache {

inline constexpr std::string_view kDefaultSocketPath = "/run/modelcache/agent.sock";

struct S3Config {
  std::string endpoint;  // empty: AWS
  std::string region = "us-east-1";
  bool path_style = false;
  std::string credentials_file;  // resolved default; a missing default file is not an error
  bool credentials_file_explicit = false;
  std::string profile;  // empty: $AWS_PROFILE, else "default" (see ResolveAwsCredentials)
};

struct AgentConfig {
  std::filesystem::path cache_root;
  std::string socket{kDefaultSocketPath};
  std::string listen_tcp;
  std::string metrics_address = "0.0.0.0:9464";
  std::string node_name;
  std::string coordinator;
  // coordinatorToken, or after LoadAgentConfig the contents of coordinatorTokenFile.
  std::string coordinator_token;
  std::string coordinator_token_file;
  // Between two usage reports when nothing asks for one sooner (a fill, a purge, a cleanup).
  std::chrono::seconds coordinator_report_interval{10};
  // coordinatorTls: TLS to the coordinator when enabled or a CA file is given (system roots
  // without one); certFile + keyFile add a client certificate. LoadAgentConfig reads the
  // files' PEM contents into the coordinator_tls_* fields.
  struct CoordinatorTls {
    bool enabled = false;
    std::string ca_file, cert_file, key_file;
    std::string ca_pem, cert_pem, key_pem;
  } coordinator_tls;
  std::string log_level = "info";
  bool log_json = false;
  FillSettings fill;
  // Cross-node single flight (agent/single_flight/fill_gate.h): how long a fill lease lives without a renew,
  // how often waiters look for the model, and how long they wait for another agent's fill.
  std::chrono::seconds fill_lease_ttl{30};
  std::chrono::seconds fill_poll_interval{1};
  // The filler renews its fill lease only while a chunk landed within this window. Progress
  // is counted in whole chunks (fill.chunkSize), so the window must exceed the time one chunk
  // takes at the slowest origin rate that should keep its lease.
  std::chrono::seconds fill_progress_window{300};
  std::chrono::seconds fill_wait_timeout{std::chrono::hours(2)};
  // listing: how many source listings run at once and how many bytes they hold together
  // (agent/source/listing_budget.h).
  ListingBudget::Limits listing;
  // hf:// sources. `token` is $HF_TOKEN, or after LoadAgentConfig the contents of tokenFile.
  struct Hf {
    std::string endpoint;    // "" until ParseAgentConfig sets the default
    std::string token_file;
    std::string token;
  } hf;
  // oci:// sources. LoadAgentConfig reads dockerConfig into docker_config_json (and checks it).
  struct Oci {
    std::vector<std::string> insecure_registries;  // host[:port], lower case
    std::string docker_config;
    std::string docker_config_json;
  } oci;
  S3Config s3;
  AwsCredentials aws;  // resolved by LoadAgentConfig (environment or credentials file)
  StorageConfig storage;
  // false only when the file has a modelsCacheStorage block with `enabled: false`: the agent
  // then answers Ensure with FAILED_PRECONDITION so clients fall back to a local download.
  bool caching_enabled = true;
  // Other cache volumes mounted here (an old volume after switching storage): reachable by
  // `modelcachectl migrate` and `cleanup` through this agent, never filled by Ensure.
  std::vector<std::filesystem::path> extra_volumes;
  // fileSources: file:// sources are read only beneath these folders (agent/source/file_tree.h),
  // with the agent's rights, and published readable by every pod: none by default.
  std::vector<std::filesystem::path> file_sources;
  // network: the addresses http(s) and s3 sources may connect to (agent/source/address_policy.h).
  NetworkPolicy network;
  // TESTS ONLY (key testOnlyFilesystemType): the storage check judges this type ("tmpfs",
  // "nfs", "0x01021994") instead of statfs's answer for cacheRoot.
  std::string test_only_filesystem_type;
  // Background scrub: every `scrub_every` (0: never) re-hash every published model at most
  // `scrub_bytes_per_second`; a damaged one is quarantined as by `modelcachectl verify`.
  std::chrono::seconds scrub_every{0};
  uint64_t scrub_bytes_per_second = 64ull << 20;
  // How long a lease taken by Ensure (holder set) or Hold lasts without a renewal.
  std::chrono::seconds lease_ttl{kDefaultPodLeaseTtl};
  // kubernetes: leases that follow the pods of this node (agent/pod_leases/).
  pod_leases::PodLeasesConfig kubernetes;
  // This agent's own files: answered command ids, the last caching policy. Resolved by
  // ParseAgentConfig (default: AgentStateDir of the cache layout for this node).
  std::filesystem::path state_dir;

  // What ModelCache::Open needs (quota from modelsCacheStorage.storageSize).
  ModelCacheOptions ToModelCacheOptions() const;
};

// Command-line overrides; unset flags leave the file's value.
struct AgentFlags {
  std::optional<std::string> config_file;
  std::optional<std::string> cache_root;
  std::optional<std::string> socket;
  std::optional<std::string> listen_tcp;
  std::optional<std::string> metrics_address;
  std::optional<std::string> node_name;
  std::optional<std::string> log_level;
  std::optional<bool> log_json;
};

// Registers --config, --cache-root, --socket, --listen-tcp, --metrics-address, --node-name,
// --log-level and --log-json on `app`, writing into `flags` (which must outlive parsing).
void AddAgentFlags(CLI::App& app, AgentFlags& flags);

// Pure: defaults, then `yaml_text` (may be empty), then `flags`, then validation. Does not
// resolve AWS credentials. INVALID_ARGUMENT names the key path and the value
// ("fill.chunkSize: invalid value \"8Q\": ...").
absl::StatusOr<AgentConfig> ParseAgentConfig(std::string_view yaml_text, const AgentFlags& flags,
                                             const ProcessEnvironment& environment);

// Reads the config file (flags.config_file) and the AWS credentials file, then ParseAgentConfig
// and ResolveAwsCredentials. NOT_FOUND names a missing config file.
absl::StatusOr<AgentConfig> LoadAgentConfig(const AgentFlags& flags,
                                            const ProcessEnvironment& environment);

// AWS credentials for `s3`: environment variables first, then the profile in the credentials
// file. Shared with modelcachectl's local fallback.
absl::StatusOr<AwsCredentials> LoadAwsCredentials(const S3Config& s3,
                                                  const ProcessEnvironment& environment);

// The credentials file to use when none is configured: $AWS_SHARED_CREDENTIALS_FILE, else
// $HOME/.aws/credentials ("" when neither is known).
std::string DefaultCredentialsFile(const ProcessEnvironment& environment);

}  // namespace modelcache
