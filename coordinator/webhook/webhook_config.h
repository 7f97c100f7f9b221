#pragma once
// The coordinator's `webhook` block: the mutating admission webhook (coordinator/webhook/).
//   webhook:
//     enabled: false                 # off: no HTTPS listener
//     listen: 0.0.0.0:8443           # host:port of /mutate (HTTPS only)
//     # The serving certificate: files (a mounted kubernetes.io/tls Secret, e.g. cert-manager's;
//     # read again when they change) ...
//     tlsCert: ""                    # PEM chain
//     tlsKey: ""                     # PEM key
//     # ... or made by the coordinator (certificate_keeper.h); exactly one of the two.
//     certificates:
//       managed: false
//       secret: modelcache-webhook-tls      # kept in this Secret (namespace below)
//       namespace: modelcache               # the Secret's and the Service's
//       service: modelcache-coordinator     # the certificate names <service>, <service>.<ns>,
//       clusterDomain: cluster.local        #   <service>.<ns>.svc, <service>.<ns>.svc.<clusterDomain>
//       mutatingWebhookConfiguration: modelcache   # whose caBundle it patches
//       validFor: 365d                      # a new serving certificate
//       caValidFor: 3650d                   # a new CA
//       renewBefore: 30d                    # renew when less than this is left
//       checkEvery: 1h                      # look at the Secret and the caBundle again
//     image: ""                      # the init container's image: the coordinator's own; required
//     claimName: ""                  # empty: the claim copy's name (kubernetes.release + pvcNameSuffix)
//     socketHostPath: /run/modelcache  # the agents' socket folder on each node
//     agentCacheRoot: /cache         # the agents' cacheRoot (where fetch's printed paths live)
// The managed certificates use the Kubernetes API with the `kubernetes` block's kubeconfig
// and requestLog (whether or not kubernetes.enabled).
#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/webhook/pod_injection.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace modelcache::webhook {

struct ManagedCertificatesConfig {
  bool managed = false;
  std::string secret = "modelcache-webhook-tls";
  std::string namespace_name = "modelcache";
  std::string service = "modelcache-coordinator";
  std::string cluster_domain = "cluster.local";
  std::string webhook_configuration = "modelcache";
  std::chrono::seconds valid_for{365 * 24 * 3600};
  std::chrono::seconds authority_valid_for{3650 * 24 * 3600};
  std::chrono::seconds renew_before{30 * 24 * 3600};
  std::chrono::seconds check_every{3600};

  // The Service's names, shortest first: what the serving certificate must name.
  std::vector<std::string> DnsNames() const;
};

struct WebhookConfig {
  bool enabled = false;
  std::string listen = "0.0.0.0:8443";
  std::string tls_cert_file;
  std::string tls_key_file;
  ManagedCertificatesConfig certificates;
  // claim_name empty until the whole file is read: ResolveClaimName fills it.
  InjectionSettings injection;
};

// Parses the block (a map; null gives the defaults). INVALID_ARGUMENT naming the key
// ("webhook.tlsCert") for a bad value or an unknown key; with enabled, neither or both of
// tlsCert/tlsKey and certificates.managed, tlsCert without tlsKey, a missing image, a relative
// socketHostPath or agentCacheRoot, or renewBefore not below validFor and caValidFor.
absl::StatusOr<WebhookConfig> ParseWebhookConfig(const YAML::Node& block);

}  // namespace modelcache::webhook
