#include "common/fs.h"

#include "common/file_descriptor.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

absl::Status FsyncPath(const std::filesystem::path& path, int flags) {
  FileDescriptor fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open", path);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync", path);
  return absl::OkStatus();
}

// What a walk does with each entry below a directory. `path` is for messages only; all
// access goes through descriptors so that a rename elsewhere cannot redirect the walk.
struct TreeWalk {
  bool remove = false;
  uint64_t bytes = 0;
};

absl::Status WalkEntry(int parent_fd, const char* name, const std::filesystem::path& path,
                       TreeWalk& walk);

absl::Status WalkDirectoryContents(int dir_fd, const std::filesystem::path& path, TreeWalk& walk) {
  // fdopendir takes ownership of the descriptor it is given, so hand it a duplicate.
  int listing_fd = ::dup(dir_fd);
  if (listing_fd < 0) return ErrnoStatus(errno, "dup", path);
  DIR* dir = ::fdopendir(listing_fd);
  if (dir == nullptr) {
    int error_number = errno;
    ::close(listing_fd);
    return ErrnoStatus(error_number, "opendir", path);
  }
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    dirent* entry = ::readdir(dir);
    if (entry == nullptr) break;
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  int read_error = errno;
  ::closedir(dir);
  if (read_error != 0 && read_error != ENOENT) return ErrnoStatus(read_error, "readdir", path);
  for (const std::string& name : names) {
    RETURN_IF_ERROR(WalkEntry(dir_fd, name.c_str(), path / name, walk));
  }
  return absl::OkStatus();
}

absl::Status WalkEntry(int parent_fd, const char* name, const std::filesystem::path& path,
                       TreeWalk& walk) {
  struct stat info;
  if (::fstatat(parent_fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();  // deleted concurrently
    return ErrnoStatus(errno, "stat", path);
  }
  if (S_ISDIR(info.st_mode)) {
    FileDescriptor fd(::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return absl::OkStatus();
      return ErrnoStatus(errno, "open", path);
    }
    RETURN_IF_ERROR(WalkDirectoryContents(fd.get(), path, walk));
    if (walk.remove && ::unlinkat(parent_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "rmdir", path);
    }
    return absl::OkStatus();
  }
  if (!walk.remove) {
    if (S_ISREG(info.st_mode)) walk.bytes += static_cast<uint64_t>(info.st_size);
    return absl::OkStatus();
  }
  if (::unlinkat(parent_fd, name, 0) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "unlink", path);
  }
  if (S_ISREG(info.st_mode)) walk.bytes += static_cast<uint64_t>(info.st_size);
  return absl::OkStatus();
}

absl::Status WalkTree(const std::filesystem::path& path, TreeWalk& walk) {
  std::filesystem::path target = path;
  if (target.filename().empty() && target.has_parent_path()) target = target.parent_path();
  std::filesystem::path parent = target.parent_path();
  if (parent.empty()) parent = ".";
  FileDescriptor parent_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent_fd.get() < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "open", parent);
  }
  return WalkEntry(parent_fd.get(), target.filename().c_str(), target, walk);
}

}  // namespace

absl::Status WriteAll(int fd, std::string_view contents, const std::filesystem::path& path) {
  while (!contents.empty()) {
    ssize_t written = ::write(fd, contents.data(), contents.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", path);
    }
    contents.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

absl::Status SetFileTimes(int fd, Clock::TimePoint time, const std::filesystem::path& path) {
  auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  struct timespec times[2];
  times[0].tv_sec = seconds.count();
  times[0].tv_nsec =
      std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count();
  times[1] = times[0];
  if (::futimens(fd, times) != 0) return ErrnoStatus(errno, "set times of", path);
  return absl::OkStatus();
}

absl::Status ErrnoStatus(int error_number, std::string_view what,
                         const std::filesystem::path& path) {
  std::string message =
      fmt::format("{} {}: {}", what, path.string(),
                  std::error_code(error_number, std::generic_category()).message());
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case EEXIST:
    case ENOTEMPTY:
      return absl::AlreadyExistsError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "open", path);
  std::string contents;
  struct stat info;
  if (::fstat(fd.get(), &info) == 0 && info.st_size > 0) {
    contents.reserve(static_cast<size_t>(info.st_size));
  }
  char buffer[64 * 1024];
  while (true) {
    ssize_t got = ::read(fd.get(), buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (got == 0) break;
    contents.append(buffer, static_cast<size_t>(got));
  }
  return contents;
}

absl::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view contents) {
  std::string temporary = path.string() + ".tmp.XXXXXX";
  int raw_fd = ::mkstemp(temporary.data());
  if (raw_fd < 0) return ErrnoStatus(errno, "create temporary file for", path);
  FileDescriptor fd(raw_fd);
  auto fail = [&](absl::Status status) {
    ::unlink(temporary.c_str());
    return status;
  };
  // mkstemp creates 0600; the files we write are read by other agents and by pods.
  if (::fchmod(fd.get(), 0644) != 0) return fail(ErrnoStatus(errno, "chmod", temporary));
  if (absl::Status status = WriteAll(fd.get(), contents, temporary); !status.ok()) {
    return fail(status);
  }
  if (::fsync(fd.get()) != 0) return fail(ErrnoStatus(errno, "fsync", temporary));
  if (fd.Close() != 0) return fail(ErrnoStatus(errno, "close", temporary));
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return fail(ErrnoStatus(errno, "rename to", path));
  }
  std::filesystem::path parent = path.parent_path();
  return FsyncDirectory(parent.empty() ? std::filesystem::path(".") : parent);
}

absl::Status FsyncFile(const std::filesystem::path& path) { return FsyncPath(path, O_RDONLY); }

absl::Status FsyncDirectory(const std::filesystem::path& path) {
  return FsyncPath(path, O_RDONLY | O_DIRECTORY);
}

absl::Status CreateDirectories(const std::filesystem::path& path) {
  // Find the missing ancestors, then create them outermost first.
  std::vector<std::filesystem::path> missing;
  std::filesystem::path current = path.lexically_normal();
  if (!current.empty() && current.filename().empty()) current = current.parent_path();
  while (!current.empty()) {
    struct stat info;
    if (::stat(current.c_str(), &info) == 0) {
      if (!S_ISDIR(info.st_mode)) {
        return absl::FailedPreconditionError(
            fmt::format("create directory {}: {} exists and is not a directory", path.string(),
                        current.string()));
      }
      break;
    }
    if (errno != ENOENT) return ErrnoStatus(errno, "stat", current);
    missing.push_back(current);
    std::filesystem::path parent = current.parent_path();
    if (parent == current) break;
    current = parent;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;  // created concurrently
      return ErrnoStatus(errno, "mkdir", *it);
    }
    RETURN_IF_ERROR(FsyncDirectory(*it));
    std::filesystem::path parent = it->parent_path();
    RETURN_IF_ERROR(FsyncDirectory(parent.empty() ? std::filesystem::path(".") : parent));
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::filesystem::path& path) {
  return RemoveTreeCountingBytes(path).status();
}

absl::StatusOr<uint64_t> RemoveTreeCountingBytes(const std::filesystem::path& path) {
  TreeWalk walk;
  walk.remove = true;
  RETURN_IF_ERROR(WalkTree(path, walk));
  return walk.bytes;
}

absl::StatusOr<uint64_t> TreeSizeBytes(const std::filesystem::path& path) {
  TreeWalk walk;
  RETURN_IF_ERROR(WalkTree(path, walk));
  return walk.bytes;
}

// Sorted names of the entries of a directory (empty when it does not exist).
absl::StatusOr<std::vector<std::string>> ListDirectory(const std::filesystem::path& path) {
  std::vector<std::string> names;
  std::error_code error;
  std::filesystem::directory_iterator it(path, error);
  if (error == std::errc::no_such_file_or_directory) return names;
  if (error) return ErrnoStatus(error.value(), "list", path);
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return ErrnoStatus(error.value(), "list", path);
    names.push_back(it->path().filename().string());
  }
  if (error) return ErrnoStatus(error.value(), "list", path);
  std::sort(names.begin(), names.end());
  return names;
}

bool IsDirectory(const std::filesystem::path& path) {
  struct stat info;
  return ::lstat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

}  // namespace modelcache
