#pragma once
// The RBAC rules deploy/ grants a ServiceAccount, rendered with the real `kubectl kustomize`,
// and a check of recorded API requests against them: the test that the coordinator's
// ClusterRole allows every request it makes and holds no rule it never uses.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace modelcache::testing {

struct RbacRule {
  std::string role;  // the ClusterRole or Role it comes from
  std::string namespace_name;  // "" : every namespace; else only requests in it (a RoleBinding's)
  std::vector<std::string> api_groups;
  std::vector<std::string> resources;
  std::vector<std::string> verbs;
  std::vector<std::string> resource_names;  // empty: any
  std::vector<std::string> non_resource_urls;
};

// The rules of every ClusterRole that a ClusterRoleBinding in `kubectl kustomize <directory>`
// binds to the ServiceAccount `account` in `namespace_name`. FAILED_PRECONDITION when kubectl
// is not installed (tests skip); INVALID_ARGUMENT when the render fails or binds the account
// through a RoleBinding (namespaced rules, which this check does not model).
absl::StatusOr<std::vector<RbacRule>> RenderedClusterRules(const std::string& directory,
                                                           std::string_view namespace_name, std::string_view account);

// Every rule `kubectl kustomize <directory>` grants the ServiceAccount: those of ClusterRoles
// bound by ClusterRoleBindings (every namespace), and those of Roles and ClusterRoles bound by
// RoleBindings (in the binding's namespace only). FAILED_PRECONDITION without kubectl.
absl::StatusOr<std::vector<RbacRule>> RenderedRules(const std::string& directory, std::string_view namespace_name,
                                                    std::string_view account);

// The rules of the ClusterRole named `role` in `kubectl kustomize <directory>` (NOT_FOUND when
// it renders none; FAILED_PRECONDITION without kubectl).
absl::StatusOr<std::vector<RbacRule>> RenderedClusterRoleRules(const std::string& directory, std::string_view role);

// The test API server's SubjectAccessReview `allow` entries (kube_api_server.mjs /_test/config)
// that grant `subject` (a user or a group) what `rules` grant: as if bound to that ClusterRole.
nlohmann::json SubjectAccessAllowRules(const std::vector<RbacRule>& rules, std::string_view subject);

// One (apiGroup, resource, verb) a rule grants, e.g. "/persistentvolumes/create" ("" group).
std::vector<std::string> GrantsOf(const std::vector<RbacRule>& rules);
// The grant a recorded request (kubernetes.requestLog line: apiGroup, resource, verb...) needs.
std::string GrantFor(const nlohmann::json& request);
// True when a rule allows it (wildcards honoured; resourceNames must name the object; a
// namespaced rule only in its namespace).
bool Allowed(const std::vector<RbacRule>& rules, const nlohmann::json& request);

// The JSON lines of a request log; lines that do not parse are an error naming the line.
absl::StatusOr<std::vector<nlohmann::json>> ReadRequestLog(const std::string& path);

// For a fixture's TearDown: every request in the request log at `path` (if the daemon wrote
// one) is allowed by `rules`; `whose` names the rules in a failure ("deploy/base's ClusterRole").
void ExpectRequestsAllowed(const absl::StatusOr<std::vector<RbacRule>>& rules, const std::string& path,
                           std::string_view whose);

}  // namespace modelcache::testing
