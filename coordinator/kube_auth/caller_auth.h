#pragma once
// Who calls the coordinator, and may they: the tokens file (coordinator/auth.h) and the
// Kubernetes reviews (kube_reviewer.h), in that order. A token the file lists is decided by the
// file alone, with no API call (so the file also works with no API server, outside Kubernetes,
// and for a break-glass admin token); any other token goes to the Kubernetes API when
// `coordinator.kubernetesAuth.enabled` is on, and is refused otherwise.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/auth.h"
#include "coordinator/kube_auth/kube_reviewer.h"

namespace modelcache {
struct CoordinatorConfig;
}  // namespace modelcache

namespace modelcache::kube_auth {

class CallerAuth {
 public:
  // Loads the tokens file and connects the reviewer as configured. Null (OK) when neither is
  // configured: no authentication. Errors name the file or the kubernetes setting.
  static absl::StatusOr<std::unique_ptr<CallerAuth>> Create(const CoordinatorConfig& config, const Clock& clock);
  CallerAuth(std::optional<TokenTable> tokens, std::unique_ptr<KubeReviewer> reviewer);

  // `authorization` is the request's metadata value, "Bearer <token>". UNAUTHENTICATED,
  // PERMISSION_DENIED or UNAVAILABLE (kube_reviewer.h); blocks at most the review timeout.
  absl::StatusOr<Principal> Check(std::string_view authorization, Permission permission, std::string_view what);

  // "tokens file", "kubernetes", "tokens file, then kubernetes": for the start-up log.
  std::string Describe() const;

 private:
  std::optional<TokenTable> tokens_;
  std::unique_ptr<KubeReviewer> reviewer_;
};

}  // namespace modelcache::kube_auth
