#pragma once
// The coordinator's `kubernetes` block: whether it keeps a copy of the cache claim in every
// namespace that deploys models, and where the source claim is.
//   kubernetes:
//     enabled: false              # off: no API calls for claims (coordinator.kubernetesAuth is apart)
//     kubeconfig: ""              # empty: in-cluster, then $KUBECONFIG, then ~/.kube/config
//     sourceNamespace: modelcache # where models-cache-pvc-<release><pvcNameSuffix> lives
//     release: modelcache
//     namespaceIdleAfter: 1d      # a namespace a pod asked in keeps its copy this long after
//     resyncEvery: 10m            # a full reconcile pass at least this often
//     requestLog: ""              # file: one JSON line per API request (tests, RBAC review)
// The claim's name takes pvcNameSuffix from modelsCacheStorage, so switching storage is one knob.
#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "kube/kube_config.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace modelcache::claims {

// Namespaces carrying this label get a copy of the cache claim.
inline constexpr char kNamespaceLabel[] = "modelcache.io/cache";
inline constexpr char kNamespaceLabelValue[] = "enabled";
// Why a claim copy was made: "label" (the namespace's label) or "pod" (a pod asked). Written at
// creation so that every coordinator, including one started later, reads the same answer: a
// copy made for the label is not kept "because a pod may have asked" once the label goes.
inline constexpr char kMadeForAnnotation[] = "modelcache.io/made-for";

struct KubernetesConfig {
  bool enabled = false;
  std::string kubeconfig;
  std::string source_namespace = "modelcache";
  std::string release = "modelcache";
  std::chrono::seconds namespace_idle_after{24 * 3600};
  std::chrono::seconds resync_every{600};
  std::string request_log;
  // Not a key: the process environment (KUBERNETES_SERVICE_HOST, KUBECONFIG, HOME), filled by
  // main() so that nothing below reads a variable itself.
  kube::KubeEnvironment environment;
};

// Parses the block (a map; null gives the defaults). INVALID_ARGUMENT naming the key
// ("kubernetes.namespaceIdleAfter") and the value for a bad value or an unknown key.
absl::StatusOr<KubernetesConfig> ParseKubernetesConfig(const YAML::Node& block);

// models-cache-pvc-<release><pvcNameSuffix>: the claim the agents mount in sourceNamespace.
std::string SourceClaimName(const std::string& release, const std::string& pvc_name_suffix);

// With the block enabled: INVALID_ARGUMENT when the claim name that release and
// modelsCacheStorage.pvcNameSuffix make is not a valid PersistentVolumeClaim name (a DNS-1123
// subdomain of at most 253 characters), naming both keys.
absl::Status ValidateSourceClaim(const KubernetesConfig& config, const std::string& pvc_name_suffix);

}  // namespace modelcache::claims
