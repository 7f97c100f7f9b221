#pragma once
// OCI (container registry) source URIs:
//
//   oci://<registry>[:<port>]/<repository>[:<tag>]
//   oci://<registry>[:<port>]/<repository>@sha256:<64 hex>
//   oci://<registry>[:<port>]/<repository>:<tag>@sha256:<64 hex>   (the digest wins)
//
// The first path part is always the registry (no Docker Hub shorthand). A reference without a
// tag or digest means ":latest", as docker pull does. Repository names follow the distribution
// grammar (lower case, components of [a-z0-9] joined by '.', '_', '__' or dashes).
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache {

struct OciUri {
  std::string registry;    // "ghcr.io", "127.0.0.1:5000" (lower case)
  std::string repository;  // "org/models/llama"
  std::string tag;         // "v1"; "latest" when neither tag nor digest was written
  std::string digest;      // "sha256:<hex>" or empty

  // The tag or the digest, as the manifests endpoint takes it.
  const std::string& Reference() const { return digest.empty() ? tag : digest; }
  // True for a registry on this host (localhost, 127.0.0.0/8, [::1]): plain HTTP is allowed
  // there, as docker allows it.
  bool IsLoopbackRegistry() const;
};

// INVALID_ARGUMENT names the URI and what is wrong (missing registry or repository, a bad
// repository component, tag or digest; only sha256 digests are accepted).
absl::StatusOr<OciUri> ParseOciUri(std::string_view uri);

// The canonical form: "oci://registry/repository:tag" or "oci://registry/repository@sha256:.."
// (a tag written beside a digest is left out: the digest names the bytes).
std::string FormatOciUri(const OciUri& uri);

// True for "sha256:" followed by 64 lower-case hex digits.
bool IsSha256Digest(std::string_view digest);

}  // namespace modelcache
