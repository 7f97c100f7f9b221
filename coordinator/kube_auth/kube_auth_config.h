#pragma once
// The coordinator's `coordinator.kubernetesAuth` block: callers proven by the Kubernetes API
// (coordinator/kube_auth/kube_reviewer.h) instead of, or besides, the tokens file.
//   coordinator:
//     kubernetesAuth:
//       enabled: false                                # deploy/ turns it on
//       audience: modelcache                          # agents' projected tokens carry it
//       agentServiceAccount: modelcache/modelcache-agent   # namespace/name: the agents' identity
//       cacheFor: 60s                                 # an accepted review is reused this long
//       reviewTimeout: 5s                             # longer: the caller gets UNAVAILABLE
// The API server is found as for the cache claims: `kubernetes.kubeconfig`, else in-cluster,
// $KUBECONFIG, ~/.kube/config; requests go to `kubernetes.requestLog` when it is set.
#include <chrono>
#include <string>

#include "absl/status/statusor.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace modelcache::kube_auth {

// The modelcache resource that SubjectAccessReviews ask about (ClusterRoles in deploy/).
inline constexpr char kApiGroup[] = "modelcache.io";
inline constexpr char kResource[] = "models";

struct KubernetesAuthConfig {
  bool enabled = false;
  std::string audience = "modelcache";
  std::string agent_namespace = "modelcache";
  std::string agent_service_account = "modelcache-agent";
  std::chrono::seconds cache_for{60};
  std::chrono::seconds review_timeout{5};

  // "system:serviceaccount:<namespace>:<name>": the username TokenReviews give the agents.
  std::string AgentUsername() const;
};

// Parses the block (a map; null gives the defaults). INVALID_ARGUMENT naming the key
// ("coordinator.kubernetesAuth.reviewTimeout") and the value for a bad value or unknown key.
absl::StatusOr<KubernetesAuthConfig> ParseKubernetesAuthConfig(const YAML::Node& block);

}  // namespace modelcache::kube_auth
