#include "coordinator/kube_auth/reviews.h"

#include <algorithm>

#include "coordinator/kube_auth/kube_auth_config.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::kube_auth {
namespace {

using nlohmann::json;

std::string StringAt(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : "";
}

}  // namespace

json TokenReviewRequest(std::string_view token, std::string_view audience) {
  json spec = {{"token", std::string(token)}};
  if (!audience.empty()) spec["audiences"] = json::array({std::string(audience)});
  return {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"spec", spec}};
}

absl::StatusOr<KubeIdentity> ReadTokenReview(const json& answer, std::string_view audience) {
  const json* status = answer.is_object() && answer.contains("status") ? &answer["status"] : nullptr;
  if (status == nullptr || !status->is_object()) return absl::InternalError("TokenReview answer has no status");
  const bool authenticated = status->value("authenticated", false);
  const std::string for_audience =
      audience.empty() ? std::string("the API server's audiences") : fmt::format("audience \"{}\"", audience);
  if (!authenticated) {
    std::string error = StringAt(*status, "error");
    return absl::UnauthenticatedError(fmt::format("token not accepted for {} (TokenReview: {})", for_audience,
                                                  error.empty() ? "not authenticated" : error));
  }
  KubeIdentity identity;
  const json user = status->value("user", json::object());
  identity.username = StringAt(user, "username");
  identity.uid = StringAt(user, "uid");
  if (user.contains("groups") && user["groups"].is_array()) {
    for (const json& group : user["groups"]) {
      if (group.is_string()) identity.groups.push_back(group.get<std::string>());
    }
  }
  if (identity.username.empty()) {
    return absl::UnauthenticatedError("TokenReview authenticated the token but named no user");
  }
  if (!audience.empty()) {
    // A server that ignores spec.audiences (an old one) must not pass any token as an agent's.
    const json audiences = status->value("audiences", json::array());
    const bool carries = audiences.is_array() &&
                         std::any_of(audiences.begin(), audiences.end(),
                                     [&](const json& a) { return a.is_string() && a.get<std::string>() == audience; });
    if (!carries) {
      return absl::UnauthenticatedError(
          fmt::format("token of {} does not carry the audience \"{}\"", identity.username, audience));
    }
    identity.audience_bound = true;
  }
  return identity;
}

std::string_view VerbFor(Permission permission) {
  switch (permission) {
    case Permission::kRead: return "get";
    case Permission::kMaintain: return "update";
    case Permission::kLease: return "lease";
    case Permission::kAdmin: return "delete";
    case Permission::kAgentStream: return "";
  }
  return "";
}

std::string_view ClusterRoleFor(Permission permission) {
  switch (permission) {
    case Permission::kRead: return "modelcache-viewer";
    case Permission::kMaintain:
    case Permission::kLease: return "modelcache-maintainer";
    case Permission::kAdmin: return "modelcache-admin";
    case Permission::kAgentStream: return "";
  }
  return "";
}

json SubjectAccessReviewRequest(const KubeIdentity& identity, std::string_view verb) {
  json spec = {{"user", identity.username},
               {"resourceAttributes", {{"group", kApiGroup}, {"resource", kResource}, {"verb", std::string(verb)}}}};
  if (!identity.uid.empty()) spec["uid"] = identity.uid;
  if (!identity.groups.empty()) spec["groups"] = identity.groups;
  return {{"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
}

absl::Status ReadSubjectAccessReview(const json& answer, const KubeIdentity& identity, Permission permission,
                                     std::string_view what) {
  const json* status = answer.is_object() && answer.contains("status") ? &answer["status"] : nullptr;
  if (status == nullptr || !status->is_object()) return absl::InternalError("SubjectAccessReview answer has no status");
  if (status->value("allowed", false) && !status->value("denied", false)) return absl::OkStatus();
  std::string reason = StringAt(*status, "reason");
  std::string evaluation = StringAt(*status, "evaluationError");
  if (!evaluation.empty()) reason += (reason.empty() ? "" : "; ") + evaluation;
  return absl::PermissionDeniedError(fmt::format(
      "{} may not {}: needs verb \"{}\" on {}.{} (ClusterRole {}){}", identity.username, what, VerbFor(permission),
      kResource, kApiGroup, ClusterRoleFor(permission), reason.empty() ? "" : fmt::format(" (SubjectAccessReview: {})", reason)));
}

}  // namespace modelcache::kube_auth
