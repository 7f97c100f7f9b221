#pragma once
// Talks to one repository of an OCI registry (the distribution API, /v2/<repository>/...):
// manifests, blobs and authentication.
//
// Plain HTTP only for registries on this host (localhost, 127.0.0.0/8, [::1]: as docker treats
// them) and those listed in SourceOptions::oci_insecure_registries; HTTPS everywhere else.
//
// Authentication follows the WWW-Authenticate challenge of a 401, once per challenge:
//   Basic              the docker config's credentials for the registry;
//   Bearer realm=..    a token from the realm (service, scope=repository:<name>:pull), asked
//                      with the credentials when there are some, anonymously otherwise;
//                      a registrytoken in the docker config is sent as the bearer token itself.
// Credentials come from a docker config.json (SourceOptions::docker_config_json, as kubelet's
// pull secrets hold them: "auths" with "auth" or "username"/"password"). Credential helpers
// (credsStore, credHelpers) are not run.
//
// Thread-safe: listing, the resolver of the range GETs and the archive stream share it.
// Blocking: never on the loop thread.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/source/blocking_http.h"
#include "agent/source/source.h"
#include "common/oci_uri.h"

namespace modelcache {

struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string registry_token;  // a bearer token used as it is
};

// The "auths" of a docker config.json, keyed by registry host[:port] (a key written as a URL,
// "https://index.docker.io/v1/", is reduced to its host). INVALID_ARGUMENT names `what` and the
// entry for JSON that does not parse or an "auth" that is not base64 of "user:password".
absl::StatusOr<std::map<std::string, RegistryCredentials>> ParseDockerConfig(std::string_view json,
                                                                             std::string_view what);

struct AuthChallenge {
  std::string scheme;  // "basic" or "bearer" (lower case)
  std::map<std::string, std::string> params;  // realm, service, scope, error
};

// The first challenge of a WWW-Authenticate value; nullopt when it names none.
std::optional<AuthChallenge> ParseAuthChallenge(std::string_view header);

class RegistryClient {
 public:
  // INVALID_ARGUMENT for a docker config that does not parse.
  static absl::StatusOr<std::unique_ptr<RegistryClient>> Create(OciUri uri, const SourceOptions& options);

  const OciUri& uri() const { return uri_; }
  const std::string& display() const { return display_; }  // the canonical URI, for messages
  // "http(s)://<registry>/v2/<repository>"
  const std::string& base_url() const { return base_url_; }
  std::string BlobUrl(std::string_view digest) const;

  // GET <base_url>/manifests/<reference>: the body and the response's Content-Type. Errors
  // name the URI and the URL: NOT_FOUND (manifest unknown), PERMISSION_DENIED (credentials
  // refused or missing, naming the docker config key), UNAVAILABLE.
  struct Manifest {
    std::string body;
    std::string content_type;
  };
  absl::StatusOr<Manifest> GetManifest(std::string_view reference);

  // The credentials to send with a blob's range GETs now. `refresh`: the last ones were
  // refused (a token expired): get a new token first.
  absl::StatusOr<HttpAuth> BlobAuth(bool refresh);

  // Streams the blob `digest` of `size` bytes to `sink`, resuming with a Range request after a
  // broken connection (up to `attempts` tries in all); `stall_timeout` without a byte breaks
  // it. `cancelled` is polled: true ends it with CANCELLED. Checks the length; the caller
  // checks the digest of what it was given.
  absl::Status StreamBlob(std::string_view digest, uint64_t size,
                          const std::function<absl::Status(std::span<const std::byte>)>& sink,
                          const std::function<bool()>& cancelled, int attempts,
                          std::chrono::seconds stall_timeout);

 private:
  RegistryClient(OciUri uri, const SourceOptions& options, std::optional<RegistryCredentials> credentials);

  // The request with the current credentials; a 401 runs the challenge once and retries.
  absl::StatusOr<HttpResponse> Perform(HttpRequest request);
  // Answers a 401's challenge: sets auth_header_. PERMISSION_DENIED when it cannot.
  absl::Status Authenticate(const HttpResponse& refused, std::string_view url);
  std::string AuthHeader() const;

  OciUri uri_;
  std::string display_;
  std::string base_url_;
  std::chrono::milliseconds timeout_;
  NetworkPolicy network_;
  std::optional<RegistryCredentials> credentials_;
  mutable std::mutex mutex_;
  std::string auth_header_;                 // "Authorization: ..." or "" (guarded by mutex_)
  std::optional<AuthChallenge> challenge_;  // the last bearer challenge (guarded by mutex_)
};

}  // namespace modelcache
