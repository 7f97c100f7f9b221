#include "agent/store/publish.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cerrno>
#include <system_error>

#include "agent/store/manifest.h"
#include "common/fs.h"
#include "common/names.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// Every file and directory of the tree reaches the disk before the rename that publishes it;
// otherwise a crash after the rename could expose a model with holes.
absl::Status FsyncTree(const std::filesystem::path& root) {
  std::error_code error;
  std::filesystem::recursive_directory_iterator it(root, error);
  if (error) return ErrnoStatus(error.value(), "list", root);
  for (; it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (error) return ErrnoStatus(error.value(), "list", root);
    const std::filesystem::directory_entry& entry = *it;
    if (entry.is_symlink(error)) continue;
    if (entry.is_directory(error)) {
      RETURN_IF_ERROR(FsyncDirectory(entry.path()));
    } else if (entry.is_regular_file(error)) {
      RETURN_IF_ERROR(FsyncFile(entry.path()));
    }
  }
  if (error) return ErrnoStatus(error.value(), "list", root);
  return FsyncDirectory(root);
}

// The manifest must describe what is on disk: a fill that lost a file must not publish.
absl::Status CheckFilesPresent(const std::filesystem::path& tree, const v1::Manifest& manifest) {
  for (const v1::ManifestFile& file : manifest.files()) {
    RETURN_IF_ERROR(ValidateRelativeFilePath(file.path()));
    std::filesystem::path path = tree / file.path();
    struct stat info;
    if (::lstat(path.c_str(), &info) != 0) return ErrnoStatus(errno, "stat", path);
    if (!S_ISREG(info.st_mode)) {
      return absl::FailedPreconditionError(
          fmt::format("publish {}: {} is not a regular file", tree.string(), file.path()));
    }
    if (static_cast<uint64_t>(info.st_size) != file.size()) {
      return absl::FailedPreconditionError(
          fmt::format("publish {}: file {} has {} bytes, manifest says {}", tree.string(),
                      file.path(), info.st_size, file.size()));
    }
  }
  return absl::OkStatus();
}

// rename() that never replaces: plain rename(2) would silently replace an empty directory.
// NFS does not support RENAME_NOREPLACE (EINVAL), so fall back to checking first there.
absl::Status RenameNoReplace(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return absl::OkStatus();
  }
  if (errno != EINVAL && errno != ENOSYS) return ErrnoStatus(errno, "rename to", to);
  struct stat info;
  if (::lstat(to.c_str(), &info) == 0) return ErrnoStatus(EEXIST, "rename to", to);
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus(errno, "rename to", to);
  return absl::OkStatus();
}

}  // namespace

absl::Status Publish(const CacheLayout& layout, const v1::Manifest& manifest) {
  RETURN_IF_ERROR(ValidateModelName(manifest.name()));
  RETURN_IF_ERROR(ValidateModelVersion(manifest.version()));
  const std::string& name = manifest.name();
  const std::string& version = manifest.version();
  std::filesystem::path tree = layout.StagingTree(name, version);
  std::filesystem::path target = layout.ModelDir(name, version);

  struct stat info;
  if (::lstat(target.c_str(), &info) == 0) {
    return absl::AlreadyExistsError(
        fmt::format("model {}@{}: already published at {}", name, version, target.string()));
  }
  RETURN_IF_ERROR(CheckFilesPresent(tree, manifest));
  RETURN_IF_ERROR(WriteManifest(tree / kManifestFileName, manifest));
  RETURN_IF_ERROR(FsyncTree(tree));
  RETURN_IF_ERROR(CreateDirectories(target.parent_path()));
  if (absl::Status status = RenameNoReplace(tree, target); !status.ok()) {
    if (absl::IsAlreadyExists(status)) {
      return absl::AlreadyExistsError(
          fmt::format("model {}@{}: published meanwhile at {}", name, version, target.string()));
    }
    return status;
  }
  RETURN_IF_ERROR(FsyncDirectory(target.parent_path()));
  // What is left (the journal) is only useful to an unfinished fill.
  RETURN_IF_ERROR(RemoveTree(layout.StagingFor(name, version)));
  return FsyncDirectory(layout.StagingDir());
}

}  // namespace modelcache
