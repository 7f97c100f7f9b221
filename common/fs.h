#pragma once
// File-system helpers with crash-safe semantics and Status errors that name the path.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"

namespace modelcache {

// errno -> status code: ENOSPC/EDQUOT -> RESOURCE_EXHAUSTED, ENOENT -> NOT_FOUND,
// EACCES/EPERM/EROFS -> PERMISSION_DENIED, EEXIST/ENOTEMPTY -> ALREADY_EXISTS, else INTERNAL.
// Message: "<what> <path>: <strerror>".
absl::Status ErrnoStatus(int error_number, std::string_view what, const std::filesystem::path& path);

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

// write(2) until all of `contents` is written (EINTR retried); errors name `path`.
absl::Status WriteAll(int fd, std::string_view contents, const std::filesystem::path& path);

// Sets both timestamps of the open file `fd` to `time` (set by the client, so the same
// clock on NFS). `path` names the file in errors.
absl::Status SetFileTimes(int fd, Clock::TimePoint time, const std::filesystem::path& path);

// Writes `contents` to a temporary file beside `path`, fsyncs it, renames it over `path` and
// fsyncs the directory: a crash leaves either the old file or the new one.
absl::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view contents);

absl::Status FsyncFile(const std::filesystem::path& path);
absl::Status FsyncDirectory(const std::filesystem::path& path);

// mkdir -p, fsyncing each directory it creates and its parent.
absl::Status CreateDirectories(const std::filesystem::path& path);

// rm -rf that reports the first error (NOT_FOUND is not an error). Does not follow symlinks.
// Safe when another process deletes the same tree concurrently: entries that vanish under
// it are skipped.
absl::Status RemoveTree(const std::filesystem::path& path);

// RemoveTree that returns the bytes of the regular files this call unlinked (entries removed
// by a concurrent deleter are not counted).
absl::StatusOr<uint64_t> RemoveTreeCountingBytes(const std::filesystem::path& path);

// Sum of the sizes of regular files below `path` (0 when it does not exist). Does not follow
// symlinks; entries that vanish during the walk are skipped.
absl::StatusOr<uint64_t> TreeSizeBytes(const std::filesystem::path& path);

// Sorted names of a directory's entries; empty when it does not exist.
absl::StatusOr<std::vector<std::string>> ListDirectory(const std::filesystem::path& path);

// True for a directory itself, not a symlink to one (lstat).
bool IsDirectory(const std::filesystem::path& path);

}  // namespace modelcache
