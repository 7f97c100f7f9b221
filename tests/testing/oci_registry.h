#pragma once
// Runs Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1 for a test, with
// a fresh storage folder and, when asked, htpasswd (basic) authentication; pushes artifacts
// through the registry API (monolithic blob uploads, manifest PUTs) as a client would; and
// builds what tests push: ModelPack manifests, image ("modelcar") manifests, tar archives
// (gzip-compressed or not).
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

struct OciRegistryOptions {
  // When set, the registry wants basic auth for this user (password kOciTestPassword).
  std::string htpasswd_user;
};

inline constexpr std::string_view kOciTestPassword = "s3cret";

class OciRegistry {
 public:
  // FAILED_PRECONDITION when docker-registry is not installed (scripts/setup.sh installs it).
  static absl::StatusOr<std::unique_ptr<OciRegistry>> Start(const OciRegistryOptions& options = {});
  ~OciRegistry();  // stops the process by PID
  OciRegistry(const OciRegistry&) = delete;
  OciRegistry& operator=(const OciRegistry&) = delete;

  std::string Host() const;  // "127.0.0.1:<port>"
  pid_t pid() const { return process_->Pid(); }
  // What the registry logged (one access line per request, with its status and bytes).
  std::string Log() const;
  // HTTP 206 answers to blob GETs the log shows, and the body bytes of blob GETs.
  int BlobRangeResponses() const;
  uint64_t BlobBytesServed() const;

  // Uploads `bytes` as a blob of `repository`; returns "sha256:<hex>".
  absl::StatusOr<std::string> PushBlob(std::string_view repository, std::string_view bytes) const;
  // PUTs a manifest under `reference` (a tag or its digest); returns its digest.
  absl::StatusOr<std::string> PushManifest(std::string_view repository, std::string_view reference,
                                           std::string_view json, std::string_view media_type) const;
  // Overwrites a stored blob's bytes on disk (same length or not): what a corrupted registry
  // serves under the digest.
  absl::Status CorruptBlob(std::string_view digest, std::string_view bytes) const;

 private:
  OciRegistry() = default;
  std::vector<std::string> AuthHeaders() const;

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Subprocess> process_;
  uint16_t port_ = 0;
  std::string user_;
};

struct OciLayerSpec {
  std::string media_type;
  std::string bytes;
  std::vector<std::pair<std::string, std::string>> annotations;
};

// Pushes the layers and an empty config of `config_media_type`, then a manifest (artifactType
// `artifact_type` when not empty) under `tag`. Returns the manifest's digest.
absl::StatusOr<std::string> PushArtifact(const OciRegistry& registry, std::string_view repository,
                                         std::string_view tag, std::string_view artifact_type,
                                         std::string_view config_media_type,
                                         const std::vector<OciLayerSpec>& layers);

// A ModelPack model: one application/vnd.cncf.model.weight.v1.raw layer per file, at its
// org.cncf.model.filepath. Returns the manifest's digest.
absl::StatusOr<std::string> PushModelPack(const OciRegistry& registry, std::string_view repository,
                                          std::string_view tag,
                                          const std::vector<std::pair<std::string, std::string>>& files);

struct TarEntry {
  std::string name;
  char type = '0';        // '0' file, '5' folder, '2' symlink, '1' hard link, '3' device, ...
  std::string contents;   // files
  std::string link_name;  // links
};

// A tar archive (ustar, long names as GNU 'L' entries), gzip-compressed when `gzip`.
std::string TarArchive(const std::vector<TarEntry>& entries, bool gzip);

// The SHA-256 of `bytes`, lowercase hex.
std::string Sha256Hex(std::string_view bytes);

}  // namespace modelcache::testing
