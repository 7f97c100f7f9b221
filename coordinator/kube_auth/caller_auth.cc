#include "coordinator/kube_auth/caller_auth.h"

#include "common/status_annotate.h"
#include "common/status_macros.h"
#include "coordinator/config.h"
#include "kube/request_log.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::kube_auth {

absl::StatusOr<std::unique_ptr<CallerAuth>> CallerAuth::Create(const CoordinatorConfig& config, const Clock& clock) {
  std::optional<TokenTable> tokens;
  if (!config.tokens_file.empty()) {
    ASSIGN_OR_RETURN(tokens, TokenTable::Load(config.tokens_file));
  }
  std::unique_ptr<KubeReviewer> reviewer;
  if (config.kubernetes_auth.enabled) {
    absl::StatusOr<kube::KubeConfig> kube_config =
        kube::LoadKubeConfig({.kubeconfig = config.kubernetes.kubeconfig, .context = ""}, config.kubernetes.environment);
    if (!kube_config.ok()) {
      return Annotate(kube_config.status(), "coordinator.kubernetesAuth");
    }
    kube::KubeClientOptions logged;
    RETURN_IF_ERROR(kube::LogRequestsTo(config.kubernetes.request_log, logged));
    ASSIGN_OR_RETURN(reviewer, KubeReviewer::Create(config.kubernetes_auth, *std::move(kube_config), clock,
                                                    std::move(logged.on_request)));
  }
  if (!tokens && reviewer == nullptr) return std::unique_ptr<CallerAuth>();
  return std::make_unique<CallerAuth>(std::move(tokens), std::move(reviewer));
}

CallerAuth::CallerAuth(std::optional<TokenTable> tokens, std::unique_ptr<KubeReviewer> reviewer)
    : tokens_(std::move(tokens)), reviewer_(std::move(reviewer)) {}

absl::StatusOr<Principal> CallerAuth::Check(std::string_view authorization, Permission permission,
                                            std::string_view what) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization.empty()) return absl::UnauthenticatedError("missing bearer token");
  if (authorization.substr(0, kPrefix.size()) != kPrefix || authorization.size() == kPrefix.size()) {
    return absl::UnauthenticatedError("authorization is not \"Bearer <token>\"");
  }
  if (tokens_) {
    absl::StatusOr<Principal> listed = tokens_->Authenticate(authorization);
    if (listed.ok()) {
      RETURN_IF_ERROR(Authorize(*listed, permission, what));
      return listed;
    }
    if (reviewer_ == nullptr) return listed.status();
  }
  return reviewer_->Check(authorization.substr(kPrefix.size()), permission, what);
}

std::string CallerAuth::Describe() const {
  if (tokens_ && reviewer_) return "tokens file, then kubernetes";
  return tokens_ ? "tokens file" : "kubernetes";
}

}  // namespace modelcache::kube_auth
