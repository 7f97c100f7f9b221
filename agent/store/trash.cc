#include "agent/store/trash.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// "<unix ms>-<pid>-<random>-<basename>": unique across the agents sharing the volume, and
// the basename keeps `ls trash/` readable.
std::string UniqueTrashName(const std::filesystem::path& victim) {
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::random_device random;
  uint32_t nonce = random();
  std::filesystem::path base = victim.filename();
  if (base.empty()) base = victim.parent_path().filename();
  return fmt::format("{}-{}-{:08x}-{}", now_ms, ::getpid(), nonce, base.string());
}

}  // namespace

absl::StatusOr<std::filesystem::path> MoveToTrash(const CacheLayout& layout,
                                                  const std::filesystem::path& victim) {
  RETURN_IF_ERROR(CreateDirectories(layout.TrashDir()));
  std::filesystem::path source = victim;
  if (source.filename().empty()) source = source.parent_path();
  // A fresh name per attempt; a collision is practically impossible but must not replace
  // (rename over an empty directory would succeed silently).
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::filesystem::path destination = layout.TrashDir() / UniqueTrashName(source);
    if (::renameat2(AT_FDCWD, source.c_str(), AT_FDCWD, destination.c_str(), RENAME_NOREPLACE) !=
        0) {
      int error_number = errno;
      if (error_number == EINVAL || error_number == ENOSYS) {
        // NFS has no RENAME_NOREPLACE; the random name makes a collision negligible.
        if (::rename(source.c_str(), destination.c_str()) != 0) {
          return ErrnoStatus(errno, "move to trash", source);
        }
      } else if (error_number == EEXIST) {
        continue;
      } else {
        return ErrnoStatus(error_number, "move to trash", source);
      }
    }
    RETURN_IF_ERROR(FsyncDirectory(layout.TrashDir()));
    RETURN_IF_ERROR(FsyncDirectory(source.parent_path()));
    return destination;
  }
  return absl::InternalError(
      fmt::format("move to trash {}: no unique name after 5 attempts", source.string()));
}

absl::StatusOr<uint64_t> EmptyTrash(const CacheLayout& layout) {
  std::filesystem::path trash = layout.TrashDir();
  DIR* dir = ::opendir(trash.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return 0;
    return ErrnoStatus(errno, "open", trash);
  }
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(dir);
  uint64_t freed = 0;
  absl::Status first_error;
  // One bad entry (say, a permission problem) must not keep the others from being freed.
  for (const std::string& name : names) {
    absl::StatusOr<uint64_t> bytes = RemoveTreeCountingBytes(trash / name);
    if (bytes.ok()) {
      freed += *bytes;
    } else if (first_error.ok()) {
      first_error = bytes.status();
    }
  }
  if (!first_error.ok()) return first_error;
  return freed;
}

}  // namespace modelcache
