#pragma once
// The coordinator's `webhook` block: the mutating admission webhook (coordinator/webhook/).
//   webhook:
//     enabled: false                 # off: no HTTPS listener
//     listen: 0.0.0.0:8443           # host:port of /mutate (HTTPS only)
//     tlsCert: /etc/modelcache/webhook/tls.crt   # PEM chain; required with enabled
//     tlsKey: /etc/modelcache/webhook/tls.key    # PEM key; required with enabled
//     image: ""                      # the init container's image: the coordinator's own; required
//     claimName: ""                  # empty: the claim copy's name (kubernetes.release + pvcNameSuffix)
//     socketHostPath: /run/modelcache  # the agents' socket folder on each node
//     agentCacheRoot: /cache         # the agents' cacheRoot (where fetch's printed paths live)
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/webhook/pod_injection.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace modelcache::webhook {

struct WebhookConfig {
  bool enabled = false;
  std::string listen = "0.0.0.0:8443";
  std::string tls_cert_file;
  std::string tls_key_file;
  // claim_name empty until the whole file is read: ResolveClaimName fills it.
  InjectionSettings injection;
};

// Parses the block (a map; null gives the defaults). INVALID_ARGUMENT naming the key
// ("webhook.tlsCert") for a bad value or an unknown key; with enabled, a missing tlsCert,
// tlsKey or image, or a relative socketHostPath or agentCacheRoot.
absl::StatusOr<WebhookConfig> ParseWebhookConfig(const YAML::Node& block);

}  // namespace modelcache::webhook
