#include "agent/store/exclusive_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/fs.h"
#include "common/random_id.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

absl::Status WriteTemporary(const std::filesystem::path& temporary, std::string_view contents,
                            std::optional<Clock::TimePoint> modified) {
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "create", temporary);
  absl::Status status = WriteAll(fd, contents, temporary);
  if (status.ok() && modified.has_value()) status = SetFileTimes(fd, *modified, temporary);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoStatus(errno, "fsync", temporary);
  if (::close(fd) != 0 && status.ok()) status = ErrnoStatus(errno, "close", temporary);
  return status;
}

}  // namespace

Clock::TimePoint ModifiedTime(const struct stat& info) {
  auto since_epoch =
      std::chrono::seconds(info.st_mtim.tv_sec) + std::chrono::nanoseconds(info.st_mtim.tv_nsec);
  return Clock::TimePoint(std::chrono::duration_cast<Clock::TimePoint::duration>(since_epoch));
}

absl::Status ReplaceFile(const std::filesystem::path& path, std::string_view contents,
                         Clock::TimePoint modified) {
  std::filesystem::path temporary = path;
  temporary += ".tmp-" + RandomHexId128();
  absl::Status status = WriteTemporary(temporary, contents, modified);
  if (status.ok() && ::rename(temporary.c_str(), path.c_str()) != 0) {
    status = ErrnoStatus(errno, "rename to", path);
  }
  if (!status.ok()) {
    ::unlink(temporary.c_str());
    return status;
  }
  std::filesystem::path parent = path.parent_path();
  return FsyncDirectory(parent.empty() ? std::filesystem::path(".") : parent);
}

absl::Status CreateFileExclusive(const std::filesystem::path& path, std::string_view contents,
                                 std::optional<Clock::TimePoint> modified) {
  std::filesystem::path temporary = path;
  temporary += ".tmp-" + RandomHexId128();
  if (absl::Status status = WriteTemporary(temporary, contents, modified); !status.ok()) {
    ::unlink(temporary.c_str());
    return status;
  }
  int link_result = ::link(temporary.c_str(), path.c_str());
  int link_error = errno;
  bool linked = link_result == 0;
  if (!linked) {
    // NFS may report a failure for a link whose reply was lost and retransmitted.
    struct stat info;
    linked = ::stat(temporary.c_str(), &info) == 0 && info.st_nlink == 2;
  }
  ::unlink(temporary.c_str());
  if (!linked) return ErrnoStatus(link_error, "create", path);
  std::filesystem::path parent = path.parent_path();
  return FsyncDirectory(parent.empty() ? std::filesystem::path(".") : parent);
}

}  // namespace modelcache
