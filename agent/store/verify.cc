#include "agent/store/verify.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "agent/store/manifest.h"
#include "common/fs.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

constexpr size_t kReadBufferBytes = 1 << 20;

// Sleeps so that reading never runs ahead of the limit, measured from the start.
class Pacer {
 public:
  explicit Pacer(RateLimit limit) : limit_(limit), start_(std::chrono::steady_clock::now()) {}
  void Account(uint64_t bytes) {
    if (limit_.bytes_per_second == 0) return;
    bytes_ += bytes;
    auto due =
        start_ +
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(static_cast<double>(bytes_) / limit_.bytes_per_second));
    std::this_thread::sleep_until(due);
  }

 private:
  RateLimit limit_;
  std::chrono::steady_clock::time_point start_;
  uint64_t bytes_ = 0;
};

struct FileCheck {
  std::optional<std::string> problem;  // nullopt = good
  uint64_t bytes_hashed = 0;
};

absl::StatusOr<FileCheck> CheckFile(const std::filesystem::path& path, uint64_t want_size,
                                    const std::string& want_sha256, Pacer& pacer,
                                    std::vector<std::byte>& buffer,
                                    const std::atomic<bool>* cancel) {
  FileCheck check;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) {
      check.problem = "missing";
    } else {
      check.problem = std::string(ErrnoStatus(errno, "open", path).message());
    }
    return check;
  }
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    check.problem = "not a regular file";
    return check;
  }
  if (static_cast<uint64_t>(info.st_size) != want_size) {
    ::close(fd);
    check.problem = fmt::format("has {} bytes, manifest says {}", info.st_size, want_size);
    return check;
  }
  if (want_sha256.empty()) {
    ::close(fd);
    return check;
  }
  Sha256 hash;
  while (true) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      ::close(fd);
      return absl::CancelledError(fmt::format("verify {}: cancelled", path.string()));
    }
    ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      check.problem = std::string(ErrnoStatus(errno, "read", path).message());
      ::close(fd);
      return check;
    }
    if (got == 0) break;
    hash.Update(std::span<const std::byte>(buffer.data(), static_cast<size_t>(got)));
    check.bytes_hashed += static_cast<uint64_t>(got);
    pacer.Account(static_cast<uint64_t>(got));
  }
  ::close(fd);
  std::string got_sha256 = hash.FinishHex();
  if (check.bytes_hashed != want_size) {
    check.problem = fmt::format("read {} bytes, manifest says {}", check.bytes_hashed, want_size);
  } else if (got_sha256 != want_sha256) {
    check.problem = fmt::format("sha256 mismatch (want {}, got {})", want_sha256, got_sha256);
  }
  return check;
}

}  // namespace

absl::StatusOr<VerifyReport> VerifyTree(const std::filesystem::path& model_dir,
                                        const v1::Manifest& manifest, RateLimit rate_limit,
                                        const std::atomic<bool>* cancel) {
  VerifyReport report;
  report.name = manifest.name();
  report.version = manifest.version();
  Pacer pacer(rate_limit);
  std::vector<std::byte> buffer(kReadBufferBytes);
  for (const v1::ManifestFile& file : manifest.files()) {
    ASSIGN_OR_RETURN(FileCheck check, CheckFile(model_dir / file.path(), file.size(), file.sha256(),
                                                pacer, buffer, cancel));
    ++report.files_checked;
    report.bytes_hashed += check.bytes_hashed;
    if (check.problem.has_value()) report.bad_files.push_back({file.path(), *check.problem});
  }
  return report;
}

absl::StatusOr<VerifyReport> VerifyModel(const CacheLayout& layout, std::string_view name,
                                         std::string_view version, RateLimit rate_limit,
                                         const std::atomic<bool>* cancel) {
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateModelVersion(version));
  ASSIGN_OR_RETURN(v1::Manifest manifest, ReadManifest(layout.ManifestPath(name, version)));
  ASSIGN_OR_RETURN(VerifyReport report,
                   VerifyTree(layout.ModelDir(name, version), manifest, rate_limit, cancel));
  report.name = std::string(name);
  report.version = std::string(version);
  return report;
}

absl::StatusOr<std::filesystem::path> Quarantine(const CacheLayout& layout, std::string_view name,
                                                 std::string_view version, Clock::TimePoint now) {
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateModelVersion(version));
  std::filesystem::path source = layout.ModelDir(name, version);
  struct stat info;
  if (::lstat(source.c_str(), &info) != 0) return ErrnoStatus(errno, "quarantine", source);
  RETURN_IF_ERROR(CreateDirectories(layout.QuarantineDir()));
  std::string base = fmt::format("{}@{}-{}", name, version, ToUnixMillis(now));
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::filesystem::path target =
        layout.QuarantineDir() / (attempt == 0 ? base : fmt::format("{}.{}", base, attempt));
    if (::renameat2(AT_FDCWD, source.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
      int error_number = errno;
      if (error_number == EEXIST) continue;
      if (error_number != EINVAL && error_number != ENOSYS) {
        return ErrnoStatus(error_number, "quarantine", source);
      }
      // NFS has no RENAME_NOREPLACE: check, then rename (a racing quarantine of the same
      // model fails on the source anyway).
      if (::lstat(target.c_str(), &info) == 0) continue;
      if (::rename(source.c_str(), target.c_str()) != 0) {
        return ErrnoStatus(errno, "quarantine", source);
      }
    }
    RETURN_IF_ERROR(FsyncDirectory(layout.QuarantineDir()));
    RETURN_IF_ERROR(FsyncDirectory(source.parent_path()));
    return target;
  }
  return absl::InternalError(fmt::format("quarantine {}: no free name under {}", source.string(),
                                         layout.QuarantineDir().string()));
}

absl::StatusOr<std::filesystem::path> Quarantine(const CacheLayout& layout, std::string_view name,
                                                 std::string_view version) {
  return Quarantine(layout, name, version, SystemClock().Now());
}

}  // namespace modelcache
