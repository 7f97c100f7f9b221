#pragma once
// Copying published models from one cache volume to another through an agent that mounts
// both, so that switching StorageClass does not cost a re-download from the origin.
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/store/layout.h"

namespace modelcache {

enum class CopyMethod {
  kAuto,       // copy_file_range (server-side copy on NFS 4.2, reflink on btrfs/xfs), falling
               // back to pread/pwrite where the kernel or filesystem refuses it
  kReadWrite,  // pread/pwrite only
};

struct MigrateReport {
  std::string name;
  std::string version;
  bool skipped = false;  // already published on the target; nothing was copied
  uint64_t files = 0;
  uint64_t bytes_copied = 0;
  bool used_copy_file_range = false;  // at least one chunk went through copy_file_range
};

// Copies models/<name>/<version> of `from` into `to`'s staging folder with `parallelism`
// threads (chunks of large files in parallel), checks every copied file's size and sha256
// against the source manifest (a manifest entry without a sha256 is compared with the
// source file's hash, which then goes into the target's manifest), and publishes with
// Publish(): the model appears on the target whole or not at all. The staging folder gets a
// journal so that agents starting meanwhile leave it alone.
// Already published on the target (before or by a concurrent publish): OK with skipped.
// NOT_FOUND when the source has no such model; DATA_LOSS naming the file when a source file
// does not match its manifest (nothing is published, the staging folder is trashed);
// ABORTED when the target has a staging folder for the model already (a fill in progress);
// INVALID_ARGUMENT for a bad name or version. Blocking; every thread is joined before it
// returns.
absl::StatusOr<MigrateReport> CopyModelBetweenVolumes(const CacheLayout& from,
                                                      const CacheLayout& to, std::string_view name,
                                                      std::string_view version, int parallelism,
                                                      CopyMethod method = CopyMethod::kAuto);

}  // namespace modelcache
