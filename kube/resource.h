#pragma once
// Kubernetes resources addressed generically (group, version, plural resource name, scope),
// and the request paths built from them:
//
//   core, cluster-scoped:   /api/v1/persistentvolumes[/<name>[/<subresource>]]
//   core, namespaced:       /api/v1/namespaces/<ns>/persistentvolumeclaims[/<name>[/...]]
//   all namespaces (list):  /api/v1/persistentvolumeclaims
//   named group:            /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache::kube {

struct Resource {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string resource;  // plural, lower case: "persistentvolumeclaims"
  std::string kind;      // "PersistentVolumeClaim"
  bool namespaced = false;

  std::string ApiVersion() const;  // "v1" or "<group>/<version>"
  // "persistentvolumeclaims" or "mutatingwebhookconfigurations.admissionregistration.k8s.io",
  // the name RBAC rules and kubectl use.
  std::string QualifiedName() const;
};

// The resources the project uses.
const Resource& Namespaces();
const Resource& PersistentVolumes();
const Resource& PersistentVolumeClaims();
const Resource& Pods();
const Resource& Secrets();
const Resource& MutatingWebhookConfigurations();
const Resource& TokenReviews();          // create only
const Resource& SubjectAccessReviews();  // create only

// The path of a collection (name empty) or of one object, optionally its subresource.
// INVALID_ARGUMENT when the namespace does not fit the scope: a cluster-scoped resource with
// a namespace, or a namespaced object (name given) without one. A namespaced collection
// without a namespace is the all-namespaces collection.
absl::StatusOr<std::string> ResourcePath(const Resource& resource, std::string_view namespace_name,
                                         std::string_view name = {},
                                         std::string_view subresource = {});

// Percent-encodes a query parameter value (everything outside RFC 3986's unreserved set).
std::string EncodeQueryValue(std::string_view value);

// "persistentvolumeclaims \"data\" in namespace \"team-a\"", "persistentvolumes (cluster-scoped)":
// the object or collection a request was about, for error messages.
std::string DescribeTarget(const Resource& resource, std::string_view namespace_name,
                           std::string_view name);

}  // namespace modelcache::kube
