#include "agent/source/registry_client.h"

#include <google/protobuf/util/json_util.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "absl/strings/ascii.h"
#include "agent/source/polite_http.h"
#include "common/status_macros.h"
#include "modelcache/v1/source_formats.pb.h"
#include "common/concat.h"

namespace modelcache {
namespace {

std::string Base64Encode(std::string_view text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  out.resize(std::max(length, 0));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  std::string trimmed;
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) trimmed.push_back(c);
  }
  if (trimmed.empty() || trimmed.size() % 4 != 0) return std::nullopt;
  std::string out(trimmed.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(trimmed.data()),
                                     static_cast<int>(trimmed.size()));
  if (length < 0) return std::nullopt;
  size_t padding = 0;
  while (padding < 2 && trimmed[trimmed.size() - 1 - padding] == '=') ++padding;
  out.resize(static_cast<size_t>(length) - padding);
  return out;
}

// "https://index.docker.io/v1/" -> "index.docker.io"; "Reg:5000" -> "reg:5000".
std::string RegistryKey(std::string_view key) {
  if (const size_t scheme = key.find("://"); scheme != std::string_view::npos) key.remove_prefix(scheme + 3);
  key = key.substr(0, key.find('/'));
  return absl::AsciiStrToLower(std::string(key));
}

std::string QueryEscape(std::string_view text) { return PercentEncode(text, /*keep_slash=*/false); }

}  // namespace

absl::StatusOr<std::map<std::string, RegistryCredentials>> ParseDockerConfig(std::string_view json,
                                                                             std::string_view what) {
  v1::DockerConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &config, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(Concat(what, ": not a docker config.json (", parsed.ToString(), ")"));
  }
  std::map<std::string, RegistryCredentials> out;
  for (const auto& [key, auth] : config.auths()) {
    RegistryCredentials credentials;
    credentials.username = auth.username();
    credentials.password = auth.password();
    credentials.registry_token = auth.registrytoken();
    if (!auth.auth().empty()) {
      std::optional<std::string> decoded = Base64Decode(auth.auth());
      const size_t colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos) {
        return absl::InvalidArgumentError(
            Concat(what, ": auths.", key, ".auth is not base64 of \"username:password\""));
      }
      credentials.username = decoded->substr(0, colon);
      credentials.password = decoded->substr(colon + 1);
    }
    if (!auth.identitytoken().empty() && credentials.registry_token.empty() && credentials.username.empty()) {
      // docker logs in with an identity token as the password of the user "<token>".
      credentials.username = "<token>";
      credentials.password = auth.identitytoken();
    }
    out[RegistryKey(key)] = std::move(credentials);
  }
  return out;
}

std::optional<AuthChallenge> ParseAuthChallenge(std::string_view header) {
  size_t at = 0;
  while (at < header.size() && std::isspace(static_cast<unsigned char>(header[at]))) ++at;
  const size_t scheme_end = std::min(header.find(' ', at), header.size());
  if (scheme_end == at) return std::nullopt;
  AuthChallenge challenge;
  challenge.scheme = absl::AsciiStrToLower(std::string(header.substr(at, scheme_end - at)));
  at = scheme_end;
  // key=value or key="value", comma-separated.
  while (at < header.size()) {
    while (at < header.size() && (header[at] == ' ' || header[at] == ',')) ++at;
    const size_t equals = header.find('=', at);
    if (equals == std::string_view::npos) break;
    std::string key = absl::AsciiStrToLower(std::string(header.substr(at, equals - at)));
    at = equals + 1;
    std::string value;
    if (at < header.size() && header[at] == '"') {
      ++at;
      while (at < header.size() && header[at] != '"') {
        if (header[at] == '\\' && at + 1 < header.size()) ++at;
        value.push_back(header[at++]);
      }
      ++at;
    } else {
      const size_t end = std::min(header.find(',', at), header.size());
      value = std::string(header.substr(at, end - at));
      at = end;
    }
    challenge.params[key] = value;
  }
  return challenge;
}

absl::StatusOr<std::unique_ptr<RegistryClient>> RegistryClient::Create(OciUri uri, const SourceOptions& options) {
  std::optional<RegistryCredentials> credentials;
  if (!options.docker_config_json.empty()) {
    ASSIGN_OR_RETURN(auto all, ParseDockerConfig(options.docker_config_json, "oci.dockerConfig"));
    if (auto it = all.find(uri.registry); it != all.end()) credentials = it->second;
  }
  return std::unique_ptr<RegistryClient>(new RegistryClient(std::move(uri), options, std::move(credentials)));
}

RegistryClient::RegistryClient(OciUri uri, const SourceOptions& options,
                               std::optional<RegistryCredentials> credentials)
    : uri_(std::move(uri)),
      display_(FormatOciUri(uri_)),
      timeout_(options.request_timeout),
      network_(options.network),
      credentials_(std::move(credentials)) {
  const bool insecure =
      uri_.IsLoopbackRegistry() || std::find(options.oci_insecure_registries.begin(),
                                             options.oci_insecure_registries.end(),
                                             uri_.registry) != options.oci_insecure_registries.end();
  base_url_ = Concat(insecure ? "http" : "https", "://", uri_.registry, "/v2/", uri_.repository);
  if (credentials_ && !credentials_->registry_token.empty()) {
    auth_header_ = Concat("Authorization: Bearer ", credentials_->registry_token);
  }
}

std::string RegistryClient::BlobUrl(std::string_view digest) const {
  return Concat(base_url_, "/blobs/", digest);
}

std::string RegistryClient::AuthHeader() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return auth_header_;
}

absl::StatusOr<HttpResponse> RegistryClient::Perform(HttpRequest request) {
  request.timeout = timeout_;
  request.network = network_;
  const std::vector<std::string> headers = request.headers;
  for (int attempt = 0;; ++attempt) {
    request.headers = headers;
    if (std::string header = AuthHeader(); !header.empty()) request.headers.push_back(header);
    ASSIGN_OR_RETURN(HttpResponse response, PerformPolitely(request));
    if (response.status_code != 401 || attempt == 1) return response;
    RETURN_IF_ERROR(Authenticate(response, request.url));
  }
}

absl::Status RegistryClient::Authenticate(const HttpResponse& refused, std::string_view url) {
  const std::string where = Concat(display_, ": GET ", url, ": HTTP 401");
  const std::optional<AuthChallenge> challenge = ParseAuthChallenge(refused.Header("WWW-Authenticate").value_or(""));
  const bool have_password = credentials_ && !credentials_->username.empty();
  auto no_credentials = [&](std::string_view why) {
    return absl::PermissionDeniedError(Concat(
        where, ": ", why, have_password ? "" : Concat(": add credentials for ", uri_.registry,
                                                            " to the docker config (oci.dockerConfig)")));
  };
  if (!challenge) return no_credentials("no WWW-Authenticate challenge");
  if (challenge->scheme == "basic") {
    if (!have_password) return no_credentials("the registry wants a user and password");
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string header = Concat(
        "Authorization: Basic ", Base64Encode(Concat(credentials_->username, ":", credentials_->password)));
    if (header == auth_header_) return no_credentials("the registry refused the credentials");
    auth_header_ = header;
    return absl::OkStatus();
  }
  if (challenge->scheme != "bearer") return no_credentials(Concat("unknown scheme ", challenge->scheme));
  const std::string realm = challenge->params.count("realm") ? challenge->params.at("realm") : "";
  if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
    return absl::PermissionDeniedError(Concat(where, ": bearer challenge without an http(s) realm"));
  }
  std::string token_url = Concat(realm, realm.find('?') == std::string::npos ? "?" : "&");
  if (challenge->params.count("service")) {
    token_url += Concat("service=", QueryEscape(challenge->params.at("service")), "&");
  }
  const std::string scope = challenge->params.count("scope") ? challenge->params.at("scope")
                                                             : Concat("repository:", uri_.repository, ":pull");
  token_url += Concat("scope=", QueryEscape(scope));
  HttpRequest request;
  request.url = token_url;
  request.timeout = timeout_;
  request.network = network_;
  if (have_password) request.auth.user_password = Concat(credentials_->username, ":", credentials_->password);
  ASSIGN_OR_RETURN(const HttpResponse answer, PerformPolitely(request));
  if (answer.status_code == 401 || answer.status_code == 403) {
    return no_credentials(Concat("the token service ", realm, " refused (HTTP ", answer.status_code, ")"));
  }
  RETURN_IF_ERROR(HttpStatusToStatus(answer.status_code, "GET", realm));
  v1::RegistryTokenResponse token;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(answer.body.data(), answer.body.size()), &token, options);
  const std::string& value = token.token().empty() ? token.access_token() : token.token();
  if (!parsed.ok() || value.empty()) {
    return absl::UnavailableError(Concat(display_, ": GET ", realm, ": no token in the answer"));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string header = Concat("Authorization: Bearer ", value);
  if (header == auth_header_) return no_credentials("the registry refused the token");
  auth_header_ = header;
  challenge_ = *challenge;
  return absl::OkStatus();
}

absl::StatusOr<RegistryClient::Manifest> RegistryClient::GetManifest(std::string_view reference) {
  HttpRequest request;
  request.url = Concat(base_url_, "/manifests/", reference);
  request.headers.push_back(Concat("Accept: ", "application/vnd.oci.image.manifest.v1+json, "
                                                     "application/vnd.oci.image.index.v1+json, "
                                                     "application/vnd.docker.distribution.manifest.v2+json, "
                                                     "application/vnd.docker.distribution.manifest.list.v2+json"));
  request.max_body_bytes = 4 << 20;  // the spec's limit for a manifest
  ASSIGN_OR_RETURN(const HttpResponse response, Perform(request));
  if (response.status_code == 404) {
    return absl::NotFoundError(Concat(display_, ": GET ", request.url, ": HTTP 404 (manifest unknown)"));
  }
  if (response.status_code == 401 || response.status_code == 403) {
    return absl::PermissionDeniedError(Concat(
        display_, ": GET ", request.url, ": HTTP ", response.status_code, ": the registry refused",
        credentials_ ? " the credentials of the docker config" : Concat(
                           "; add credentials for ", uri_.registry, " to the docker config (oci.dockerConfig)")));
  }
  RETURN_IF_ERROR(HttpStatusToStatus(response.status_code, "GET", request.url));
  return Manifest{response.body, response.Header("Content-Type").value_or("")};
}

absl::StatusOr<HttpAuth> RegistryClient::BlobAuth(bool refresh) {
  if (refresh) {
    // Ask for the blob's first byte: a 401 there runs the challenge again.
    HttpRequest probe;
    probe.url = Concat(base_url_, "/manifests/", uri_.Reference());
    probe.method = "HEAD";
    probe.headers.push_back("Accept: application/vnd.oci.image.manifest.v1+json, "
                            "application/vnd.oci.image.index.v1+json");
    ASSIGN_OR_RETURN(const HttpResponse response, Perform(probe));
    if (response.status_code == 401 || response.status_code == 403) {
      return absl::PermissionDeniedError(
          Concat(display_, ": HEAD ", probe.url, ": HTTP ", response.status_code, " after a new token"));
    }
  }
  HttpAuth auth;
  if (std::string header = AuthHeader(); !header.empty()) auth.headers.push_back(header);
  return auth;
}

absl::Status RegistryClient::StreamBlob(std::string_view digest, uint64_t size,
                                        const std::function<absl::Status(std::span<const std::byte>)>& sink,
                                        const std::function<bool()>& cancelled, int attempts,
                                        std::chrono::seconds stall_timeout) {
  const std::string url = BlobUrl(digest);
  uint64_t received = 0;
  absl::Status last = absl::UnavailableError(Concat(display_, ": GET ", url, ": no attempt"));
  for (int attempt = 0; attempt < std::max(attempts, 1); ++attempt) {
    if (cancelled()) return absl::CancelledError(Concat(display_, ": blob ", digest, ": cancelled"));
    HttpRequest request;
    request.url = url;
    request.stall_timeout = stall_timeout;
    if (received > 0) request.range = HttpRange{received, size - 1};
    uint64_t skip = 0;        // a 200 to a resumed request starts over: skip what we have
    bool checked = false;
    request.body_sink = [&](long status_code, std::string_view data) -> absl::Status {
      if (cancelled()) return absl::CancelledError(Concat(display_, ": blob ", digest, ": cancelled"));
      if (!checked) {
        checked = true;
        if (status_code == 200) skip = received;
      }
      if (skip > 0) {
        const size_t dropped = static_cast<size_t>(std::min<uint64_t>(skip, data.size()));
        data.remove_prefix(dropped);
        skip -= dropped;
      }
      if (received + data.size() > size) {
        return absl::DataLossError(Concat(display_, ": blob ", digest, ": longer than its ", size,
                                                " bytes (a corrupted or replaced blob)"));
      }
      received += data.size();
      return sink(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data.data()), data.size()));
    };
    request.timeout = std::chrono::milliseconds(0);
    request.network = network_;
    if (std::string header = AuthHeader(); !header.empty()) request.headers.push_back(header);
    absl::StatusOr<HttpResponse> response = PerformHttpRequest(request);
    if (!response.ok()) {
      last = response.status();
      if (!absl::IsUnavailable(last)) return last;  // the sink's verdict, a refused address, ...
      continue;
    }
    if (response->status_code == 401 && attempt + 1 < attempts) {
      RETURN_IF_ERROR(Authenticate(*response, url));
      continue;
    }
    if (response->status_code == 404) {
      return absl::NotFoundError(Concat(display_, ": GET ", url, ": HTTP 404 (blob unknown)"));
    }
    if (response->status_code == 401 || response->status_code == 403) {
      return absl::PermissionDeniedError(Concat(display_, ": GET ", url, ": HTTP ", response->status_code));
    }
    if (response->status_code != 200 && response->status_code != 206) {
      last = HttpStatusToStatus(response->status_code, "GET", url);
      if (!absl::IsUnavailable(last)) return last;
      continue;
    }
    if (received == size) return absl::OkStatus();
    last = absl::UnavailableError(Concat(display_, ": GET ", url, ": ended after ", received, " of ", size,
                                               " bytes"));
  }
  return last;
}

}  // namespace modelcache
