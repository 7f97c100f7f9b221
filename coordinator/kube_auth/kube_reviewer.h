#pragma once
// Callers proven by the Kubernetes API: a bearer token goes to a TokenReview, and a user's
// right to act to a SubjectAccessReview on models.modelcache.io (reviews.h has the mapping).
//   - The agents present their projected ServiceAccount token, whose audience is
//     `kubernetesAuth.audience`; the review asks for that audience, and the identity must be
//     `agentServiceAccount`. Only they may open the agent stream (Connect), and they may take
//     leases; nothing else.
//   - Any other token (a user's, from the kubeconfig modelcachectl reads) is reviewed for the
//     API server's own audiences when the coordinator's audience does not authenticate it; each
//     call is then a SubjectAccessReview for the verb its permission maps to.
// Accepted answers are cached for `cacheFor` (review_cache.h); refusals and failures are not.
//
// Threads: the reviews run on the reviewer's own worker threads (the Kubernetes client blocks
// for a round trip); a caller on a gRPC thread waits at most `reviewTimeout` in all, then gets
// UNAVAILABLE. Concurrent calls with the same token (or user and verb) share one review. An
// API server that does not answer, or answers an error, is UNAVAILABLE naming the review and
// the cause: never access.
#include <functional>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/auth.h"
#include "coordinator/kube_auth/kube_auth_config.h"
#include "kube/kube_client.h"

namespace modelcache::kube_auth {

class KubeReviewer {
 public:
  // Starts the worker threads; sends nothing yet. INVALID_ARGUMENT for a config without a server.
  static absl::StatusOr<std::unique_ptr<KubeReviewer>> Create(const KubernetesAuthConfig& config,
                                                              kube::KubeConfig kube_config, const Clock& clock,
                                                              std::function<void(const kube::RequestRecord&)> on_request = {});
  ~KubeReviewer();  // joins the workers (a review in flight ends within reviewTimeout)
  KubeReviewer(const KubeReviewer&) = delete;
  KubeReviewer& operator=(const KubeReviewer&) = delete;

  // Who `token` is and whether they may do `permission` (`what` names the RPC in errors).
  // UNAUTHENTICATED when no review accepts the token; PERMISSION_DENIED naming the user, the
  // missing verb and the ClusterRole that grants it; UNAVAILABLE when the API server could not
  // say within reviewTimeout. Any thread; blocks at most reviewTimeout.
  absl::StatusOr<Principal> Check(std::string_view token, Permission permission, std::string_view what);

 private:
  struct Impl;
  explicit KubeReviewer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache::kube_auth
