#include "tests/testing/oci_registry.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_join.h"
#include "agent/source/blocking_http.h"
#include "common/sha256.h"
#include "tests/testing/hf_hub_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {
namespace {

constexpr char kRegistryBinary[] = "/usr/bin/docker-registry";
// bcrypt of kOciTestPassword (the registry's htpasswd accepts bcrypt only).
constexpr char kPasswordHash[] = "$2b$04$hAFrvz8aP7whV5xAnuXkhegPgKIz0DRVPne1rlvvjPx8uD6m1BQxa";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string Base64(std::string_view text) {
  std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  out.resize(length);
  return out;
}

void Octal(char* field, size_t size, uint64_t value) {
  std::snprintf(field, size, "%0*llo", static_cast<int>(size - 1), static_cast<unsigned long long>(value));
}

void AppendHeader(std::string& out, std::string_view name, char type, uint64_t size, std::string_view link) {
  char header[512] = {};
  std::memcpy(header, name.data(), std::min<size_t>(name.size(), 100));
  Octal(header + 100, 8, type == '5' ? 0755 : 0644);
  Octal(header + 108, 8, 0);
  Octal(header + 116, 8, 0);
  Octal(header + 124, 12, size);
  Octal(header + 136, 12, 0);
  header[156] = type;
  std::memcpy(header + 157, link.data(), std::min<size_t>(link.size(), 100));
  std::memcpy(header + 257, "ustar\0" "00", 8);
  std::memset(header + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  std::snprintf(header + 148, 8, "%06o", sum);
  header[155] = ' ';
  out.append(header, 512);
}

void AppendData(std::string& out, std::string_view data) {
  out.append(data);
  out.append((512 - data.size() % 512) % 512, '\0');
}

std::string Gzip(std::string_view data) {
  z_stream stream{};
  deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, data.size()) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::string DescriptorJson(std::string_view media_type, std::string_view digest, uint64_t size,
                           const std::vector<std::pair<std::string, std::string>>& annotations = {}) {
  std::string json = fmt::format(R"({{"mediaType":{},"digest":{},"size":{})", JsonQuote(media_type),
                                 JsonQuote(digest), size);
  if (!annotations.empty()) {
    std::vector<std::string> items;
    for (const auto& [key, value] : annotations) items.push_back(JsonQuote(key) + ":" + JsonQuote(value));
    json += fmt::format(R"(,"annotations":{{{}}})", absl::StrJoin(items, ","));
  }
  return json + "}";
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  Sha256 sha;
  sha.Update(std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  return sha.FinishHex();
}

absl::StatusOr<std::unique_ptr<OciRegistry>> OciRegistry::Start(const OciRegistryOptions& options) {
  if (::access(kRegistryBinary, X_OK) != 0) {
    return absl::FailedPreconditionError(
        fmt::format("{} not found (Debian package docker-registry; run scripts/setup.sh)", kRegistryBinary));
  }
  std::unique_ptr<OciRegistry> registry(new OciRegistry());
  registry->dir_ = std::make_unique<TempDir>();
  registry->user_ = options.htpasswd_user;
  const std::string log_path = registry->dir_->Join("registry.log");
  for (int attempt = 0; attempt < 5; ++attempt) {
    registry->port_ = FreeTcpPort();
    std::string config = fmt::format(
        "version: 0.1\n"
        "log: {{level: info, formatter: text, accesslog: {{disabled: false}}}}\n"
        "storage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\n"
        "  maintenance: {{uploadpurging: {{enabled: false}}}}\n"
        "http: {{addr: \"127.0.0.1:{}\", secret: modelcache-test}}\n",
        registry->dir_->Join("data"), registry->port_);
    if (!options.htpasswd_user.empty()) {
      std::ofstream(registry->dir_->Join("htpasswd")) << options.htpasswd_user << ":" << kPasswordHash << "\n";
      config += fmt::format("auth: {{htpasswd: {{realm: modelcache-test, path: {}}}}}\n", registry->dir_->Join("htpasswd"));
    }
    std::ofstream(registry->dir_->Join("config.yml")) << config;
    SubprocessOptions process_options;
    process_options.argv = {kRegistryBinary, "serve", registry->dir_->Join("config.yml")};
    process_options.stdout_path = log_path;
    process_options.stderr_path = log_path + ".err";
    auto process = Subprocess::Start(process_options);
    if (!process.ok()) return process.status();
    registry->process_ = *std::move(process);
    const bool up = PollUntil([&] { return TcpPortAccepts(registry->port_) || !registry->process_->Running(); },
                              std::chrono::seconds(30), std::chrono::milliseconds(50));
    if (up && registry->process_->Running()) return registry;
    registry->process_->Terminate(std::chrono::seconds(1));  // the port was taken meanwhile: another one
  }
  return absl::UnavailableError(fmt::format("docker-registry did not start: {}", registry->Log()));
}

OciRegistry::~OciRegistry() {
  if (process_) process_->Terminate(std::chrono::seconds(5));
}

std::string OciRegistry::Host() const { return fmt::format("127.0.0.1:{}", port_); }

std::string OciRegistry::Log() const {
  const std::string path = dir_->Join("registry.log");
  return ReadAll(path) + ReadAll(path + ".err");
}

int OciRegistry::BlobRangeResponses() const {
  // Access log lines: "... \"GET /v2/<name>/blobs/sha256:... HTTP/1.1\" 206 <bytes> ..."
  static const std::regex kLine(R"re("GET /v2/[^ ]*/blobs/sha256:[0-9a-f]+ HTTP/1\.1" 206 )re");
  const std::string log = Log();
  return static_cast<int>(std::distance(std::sregex_iterator(log.begin(), log.end(), kLine), std::sregex_iterator()));
}

uint64_t OciRegistry::BlobBytesServed() const {
  static const std::regex kLine(R"re("GET /v2/[^ ]*/blobs/sha256:[0-9a-f]+ HTTP/1\.1" 20[06] ([0-9]+))re");
  const std::string log = Log();
  uint64_t bytes = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kLine); it != std::sregex_iterator(); ++it) {
    bytes += std::stoull((*it)[1].str());
  }
  return bytes;
}

std::vector<std::string> OciRegistry::AuthHeaders() const {
  if (user_.empty()) return {};
  return {"Authorization: Basic " + Base64(user_ + ":" + std::string(kOciTestPassword))};
}

absl::StatusOr<std::string> OciRegistry::PushBlob(std::string_view repository, std::string_view bytes) const {
  const std::string digest = "sha256:" + Sha256Hex(bytes);
  // Monolithic upload: POST opens the upload, one PUT with ?digest= carries the bytes.
  HttpRequest start;
  start.method = "POST";
  start.url = fmt::format("http://{}/v2/{}/blobs/uploads/", Host(), repository);
  start.headers = AuthHeaders();
  start.timeout = std::chrono::seconds(30);
  start.network.enforced = false;
  absl::StatusOr<HttpResponse> opened = PerformHttpRequest(start);
  if (!opened.ok()) return opened.status();
  const std::optional<std::string> location = opened->Header("Location");
  if (opened->status_code != 202 || !location) {
    return absl::InternalError(fmt::format("start upload {}: HTTP {}: {}", digest, opened->status_code, opened->body));
  }
  HttpRequest put;
  put.method = "PUT";
  put.url = fmt::format("{}{}{}digest={}", location->starts_with("/") ? "http://" + Host() : "", *location,
                        location->find('?') == std::string::npos ? "?" : "&", digest);
  put.body = std::string(bytes);
  put.headers = AuthHeaders();
  put.headers.push_back("Content-Type: application/octet-stream");
  put.timeout = std::chrono::seconds(60);
  put.network.enforced = false;
  absl::StatusOr<HttpResponse> response = PerformHttpRequest(put);
  if (!response.ok()) return response.status();
  if (response->status_code != 201) {
    return absl::InternalError(fmt::format("push blob {}: HTTP {}: {}", digest, response->status_code, response->body));
  }
  return digest;
}

absl::StatusOr<std::string> OciRegistry::PushManifest(std::string_view repository, std::string_view reference,
                                                      std::string_view json, std::string_view media_type) const {
  HttpRequest request;
  request.method = "PUT";
  request.url = fmt::format("http://{}/v2/{}/manifests/{}", Host(), repository, reference);
  request.body = std::string(json);
  request.headers = AuthHeaders();
  request.headers.push_back(fmt::format("Content-Type: {}", media_type));
  request.timeout = std::chrono::seconds(30);
  request.network.enforced = false;
  absl::StatusOr<HttpResponse> response = PerformHttpRequest(request);
  if (!response.ok()) return response.status();
  if (response->status_code != 201) {
    return absl::InternalError(fmt::format("push manifest {}: HTTP {}: {}", reference, response->status_code,
                                           response->body));
  }
  return "sha256:" + Sha256Hex(json);
}

absl::Status OciRegistry::CorruptBlob(std::string_view digest, std::string_view bytes) const {
  const std::string hex(digest.substr(7));
  const std::filesystem::path data = std::filesystem::path(dir_->Join("data")) / "docker/registry/v2/blobs/sha256" /
                                     hex.substr(0, 2) / hex / "data";
  if (!std::filesystem::exists(data)) return absl::NotFoundError("no blob file " + data.string());
  std::ofstream(data, std::ios::binary | std::ios::trunc) << bytes;
  return absl::OkStatus();
}

absl::StatusOr<std::string> PushArtifact(const OciRegistry& registry, std::string_view repository,
                                         std::string_view tag, std::string_view artifact_type,
                                         std::string_view config_media_type,
                                         const std::vector<OciLayerSpec>& layers) {
  const std::string config = "{}";
  absl::StatusOr<std::string> config_digest = registry.PushBlob(repository, config);
  if (!config_digest.ok()) return config_digest.status();
  std::vector<std::string> descriptors;
  for (const OciLayerSpec& layer : layers) {
    absl::StatusOr<std::string> digest = registry.PushBlob(repository, layer.bytes);
    if (!digest.ok()) return digest.status();
    descriptors.push_back(DescriptorJson(layer.media_type, *digest, layer.bytes.size(), layer.annotations));
  }
  std::string manifest = fmt::format(R"({{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)");
  if (!artifact_type.empty()) manifest += fmt::format(R"("artifactType":{},)", JsonQuote(artifact_type));
  manifest += fmt::format(R"("config":{},"layers":[{}]}})", DescriptorJson(config_media_type, *config_digest, config.size()),
                          absl::StrJoin(descriptors, ","));
  return registry.PushManifest(repository, tag, manifest, "application/vnd.oci.image.manifest.v1+json");
}

absl::StatusOr<std::string> PushModelPack(const OciRegistry& registry, std::string_view repository,
                                          std::string_view tag,
                                          const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<OciLayerSpec> layers;
  for (const auto& [path, bytes] : files) {
    layers.push_back({"application/vnd.cncf.model.weight.v1.raw", bytes, {{"org.cncf.model.filepath", path}}});
  }
  return PushArtifact(registry, repository, tag, "application/vnd.cncf.model.manifest.v1+json",
                      "application/vnd.cncf.model.config.v1+json", layers);
}

std::string TarArchive(const std::vector<TarEntry>& entries, bool gzip) {
  std::string out;
  for (const TarEntry& entry : entries) {
    if (entry.name.size() > 100) {
      AppendHeader(out, "././@LongLink", 'L', entry.name.size() + 1, "");
      AppendData(out, entry.name + std::string(1, '\0'));
    }
    const uint64_t size = entry.type == '0' ? entry.contents.size() : 0;
    AppendHeader(out, entry.name, entry.type, size, entry.link_name);
    if (size > 0) AppendData(out, entry.contents);
  }
  out.append(1024, '\0');
  return gzip ? Gzip(out) : out;
}

}  // namespace modelcache::testing
