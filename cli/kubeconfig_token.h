#pragma once
// The bearer token modelcachectl sends to the coordinator when neither --token nor
// $MODELCACHE_TOKEN gives one: the user's token from the kubeconfig, found as kubectl finds it
// (--kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config; kube/kube_config.h), so that a
// Kubernetes user needs nothing but their kubectl set-up. The coordinator reviews it with the
// API server (coordinator/kube_auth/).
#include <string>

#include "absl/status/statusor.h"
#include "kube/kube_config.h"

namespace modelcache::cli {

struct KubeconfigToken {
  std::string token;
  std::string origin;  // "kubeconfig /home/x/.kube/config, context kind-dev"
};

// NOT_FOUND when there is no kubeconfig or its user has no token (a client certificate cannot
// be passed on); other errors (a bad file, an exec plugin) as LoadKubeConfig gives them.
absl::StatusOr<KubeconfigToken> TokenFromKubeconfig(const kube::KubeConfigRequest& request,
                                                    const kube::KubeEnvironment& environment);

}  // namespace modelcache::cli
