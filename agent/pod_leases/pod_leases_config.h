#pragma once
// The agent's `kubernetes` block: whether it watches the pods on its node and holds a lease on
// each model they ask for (agent/pod_leases/pod_lease_follower.h).
//   kubernetes:
//     podLeases: false     # off: no Kubernetes API calls at all (demo, tests, outside Kubernetes)
//     kubeconfig: ""       # empty: in-cluster, then $KUBECONFIG, then ~/.kube/config
//     requestLog: ""       # file: one JSON line per API request (tests, RBAC review)
// The node is the agent's nodeName (in deploy/, the downward API's spec.nodeName).
#include <string>

#include "absl/status/statusor.h"
#include "kube/kube_config.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace modelcache::pod_leases {

struct PodLeasesConfig {
  bool enabled = false;
  std::string kubeconfig;
  std::string request_log;
  // Not a key: the process environment (KUBERNETES_SERVICE_HOST, KUBECONFIG, HOME), filled by
  // the agent's config loader so that nothing below reads a variable itself.
  kube::KubeEnvironment environment;
};

// Parses the block (a map; null gives the defaults). INVALID_ARGUMENT naming the key
// ("kubernetes.podLeases") and the value for a bad value or an unknown key.
absl::StatusOr<PodLeasesConfig> ParsePodLeasesConfig(const YAML::Node& block);

}  // namespace modelcache::pod_leases
