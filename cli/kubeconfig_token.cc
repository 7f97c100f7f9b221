#include "cli/kubeconfig_token.h"

#include "common/status_annotate.h"
#include "common/status_macros.h"
#include "kube/token_source.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {

absl::StatusOr<KubeconfigToken> TokenFromKubeconfig(const kube::KubeConfigRequest& request,
                                                    const kube::KubeEnvironment& environment) {
  ASSIGN_OR_RETURN(kube::KubeConfig config, kube::LoadKubeConfig(request, environment));
  KubeconfigToken found{config.token, config.origin};
  if (found.token.empty() && !config.token_file.empty()) {
    kube::TokenSource source = kube::TokenSource::FromFile(config.token_file);
    absl::StatusOr<std::string> token = source.Current();
    if (!token.ok()) {
      return Annotate(token.status(), config.origin);
    }
    found.token = *std::move(token);
  }
  if (found.token.empty()) {
    return absl::NotFoundError(fmt::format("{}: the user has no token (a client certificate cannot be passed "
                                           "on to the coordinator)", config.origin));
  }
  return found;
}

}  // namespace modelcache::cli
