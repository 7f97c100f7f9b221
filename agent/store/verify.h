#pragma once
// Integrity over time: re-hash a published model against its manifest, and take a damaged
// model out of service without deleting the evidence.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/store/layout.h"
#include "common/clock.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

// Reading pace for background scrubbing; 0 = as fast as the disk goes.
struct RateLimit {
  uint64_t bytes_per_second = 0;
};

struct BadFile {
  std::string path;     // relative to the model, as in the manifest
  std::string problem;  // "missing", "has 10 bytes, manifest says 11", "sha256 mismatch (...)"
};

struct VerifyReport {
  std::string name;
  std::string version;
  uint64_t files_checked = 0;
  uint64_t bytes_hashed = 0;
  std::vector<BadFile> bad_files;  // in manifest order
  bool Clean() const { return bad_files.empty(); }
};

// Checks every file of the manifest of models/<name>/<version>: present, regular, the size
// and sha256 of the manifest (a manifest entry without a sha256 is checked by size only).
// Bad files are reported, not returned as errors. NOT_FOUND when the model (its manifest) is
// not published, DATA_LOSS when the manifest itself is corrupt, INVALID_ARGUMENT for a bad
// name or version, CANCELLED when *cancel becomes true. Blocking: run it on a worker thread.
absl::StatusOr<VerifyReport> VerifyModel(const CacheLayout& layout, std::string_view name,
                                         std::string_view version, RateLimit rate_limit,
                                         const std::atomic<bool>* cancel = nullptr);

// Same checks for any folder holding a model's files (a quarantined copy), against `manifest`.
absl::StatusOr<VerifyReport> VerifyTree(const std::filesystem::path& model_dir,
                                        const v1::Manifest& manifest, RateLimit rate_limit,
                                        const std::atomic<bool>* cancel = nullptr);

// Renames models/<name>/<version> to QuarantineDir()/<name>@<version>-<unix ms of `now`>
// (with a suffix if that exists) and returns the new path; the model is then no longer
// published. NOT_FOUND when it is not published.
absl::StatusOr<std::filesystem::path> Quarantine(const CacheLayout& layout, std::string_view name,
                                                 std::string_view version, Clock::TimePoint now);
// Same with the system clock.
absl::StatusOr<std::filesystem::path> Quarantine(const CacheLayout& layout, std::string_view name,
                                                 std::string_view version);

}  // namespace modelcache
