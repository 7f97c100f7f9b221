#pragma once
// TokenReviews and SubjectAccessReviews as pure functions: the request the coordinator sends
// and what the answer means. No I/O (kube_reviewer.h sends them), so each rule is a unit test.
//
// How the coordinator's permissions (coordinator/auth.h) map onto RBAC: every check is a verb
// on the resource `models` of the API group `modelcache.io`, cluster-wide. The ClusterRoles in
// deploy/ hold them:
//   Permission  verb    ClusterRole that first grants it
//   kRead       get     modelcache-viewer
//   kMaintain   update  modelcache-maintainer
//   kLease      lease   modelcache-maintainer
//   kAdmin      delete  modelcache-admin
//   kAgentStream        (no verb: only the agents' ServiceAccount, by its token's audience)
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/auth.h"

namespace modelcache::kube_auth {

// Who a TokenReview says the token belongs to.
struct KubeIdentity {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  // True when the review asked for the coordinator's audience and the token carries it (an
  // agent's projected token); false for a token reviewed for the API server's own audiences
  // (a user's kubeconfig token).
  bool audience_bound = false;
};

// The TokenReview to create. `audience` empty: the API server's own audiences.
nlohmann::json TokenReviewRequest(std::string_view token, std::string_view audience);

// The identity an answered TokenReview names. UNAUTHENTICATED with the review's error when it
// did not authenticate, or when `audience` is set and the answer's audiences lack it;
// INTERNAL for an answer without a status.
absl::StatusOr<KubeIdentity> ReadTokenReview(const nlohmann::json& answer, std::string_view audience);

// The RBAC verb a permission needs (table above); "" for kAgentStream.
std::string_view VerbFor(Permission permission);
// The least of deploy/'s ClusterRoles that grants it ("modelcache-viewer"...).
std::string_view ClusterRoleFor(Permission permission);

// The SubjectAccessReview to create: may `identity` <verb> models.modelcache.io?
nlohmann::json SubjectAccessReviewRequest(const KubeIdentity& identity, std::string_view verb);

// OK when the answer allows; PERMISSION_DENIED naming the user, what they tried (`what`, the
// RPC), the missing permission ("verb delete on models.modelcache.io") and the ClusterRole
// that grants it, with the API server's reason. INTERNAL for an answer without a status.
absl::Status ReadSubjectAccessReview(const nlohmann::json& answer, const KubeIdentity& identity,
                                     Permission permission, std::string_view what);

}  // namespace modelcache::kube_auth
