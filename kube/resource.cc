#include "kube/resource.h"

#include "spdlog/fmt/fmt.h"

namespace modelcache::kube {
namespace {

bool Unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// A name or namespace goes into the path as one segment: nothing may escape it.
absl::Status CheckSegment(std::string_view what, std::string_view value) {
  if (value == "." || value == ".." || value.find('/') != std::string_view::npos ||
      value.find('%') != std::string_view::npos) {
    return absl::InvalidArgumentError(fmt::format("kubernetes: {} \"{}\" cannot be part of a request path", what, value));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Resource::ApiVersion() const { return group.empty() ? version : group + "/" + version; }

std::string Resource::QualifiedName() const { return group.empty() ? resource : resource + "." + group; }

const Resource& Namespaces() {
  static const Resource kResource{"", "v1", "namespaces", "Namespace", false};
  return kResource;
}
const Resource& PersistentVolumes() {
  static const Resource kResource{"", "v1", "persistentvolumes", "PersistentVolume", false};
  return kResource;
}
const Resource& PersistentVolumeClaims() {
  static const Resource kResource{"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true};
  return kResource;
}
const Resource& Pods() {
  static const Resource kResource{"", "v1", "pods", "Pod", true};
  return kResource;
}
const Resource& Secrets() {
  static const Resource kResource{"", "v1", "secrets", "Secret", true};
  return kResource;
}
const Resource& MutatingWebhookConfigurations() {
  static const Resource kResource{"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
                                  "MutatingWebhookConfiguration", false};
  return kResource;
}
const Resource& TokenReviews() {
  static const Resource kResource{"authentication.k8s.io", "v1", "tokenreviews", "TokenReview", false};
  return kResource;
}
const Resource& SubjectAccessReviews() {
  static const Resource kResource{"authorization.k8s.io", "v1", "subjectaccessreviews",
                                  "SubjectAccessReview", false};
  return kResource;
}

absl::StatusOr<std::string> ResourcePath(const Resource& resource, std::string_view namespace_name,
                                         std::string_view name, std::string_view subresource) {
  if (!resource.namespaced && !namespace_name.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "kubernetes: {} are cluster-scoped; a namespace (\"{}\") was given", resource.QualifiedName(), namespace_name));
  }
  if (resource.namespaced && namespace_name.empty() && !name.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "kubernetes: {} \"{}\": the resource is namespaced and no namespace was given", resource.QualifiedName(), name));
  }
  if (name.empty() && !subresource.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "kubernetes: {}: subresource \"{}\" without an object name", resource.QualifiedName(), subresource));
  }
  if (auto status = CheckSegment("namespace", namespace_name); !status.ok()) return status;
  if (auto status = CheckSegment("name", name); !status.ok()) return status;
  if (auto status = CheckSegment("subresource", subresource); !status.ok()) return status;
  std::string path = resource.group.empty() ? "/api/" + resource.version
                                            : "/apis/" + resource.group + "/" + resource.version;
  if (!namespace_name.empty()) path += fmt::format("/namespaces/{}", namespace_name);
  path += "/" + resource.resource;
  if (!name.empty()) path += fmt::format("/{}", name);
  if (!subresource.empty()) path += fmt::format("/{}", subresource);
  return path;
}

std::string EncodeQueryValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (Unreserved(c)) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
  return out;
}

std::string DescribeTarget(const Resource& resource, std::string_view namespace_name, std::string_view name) {
  std::string text = resource.QualifiedName();
  if (!name.empty()) text += fmt::format(" \"{}\"", name);
  if (!resource.namespaced) {
    text += " (cluster-scoped)";
  } else if (namespace_name.empty()) {
    text += " in all namespaces";
  } else {
    text += fmt::format(" in namespace \"{}\"", namespace_name);
  }
  return text;
}

}  // namespace modelcache::kube
