#include "agent/fill/hash_pipeline.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

constexpr size_t kRehashBufferBytes = 1 << 20;

// Closes a descriptor on every return path of Open.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status PwriteAll(int fd, std::span<const std::byte> data, uint64_t offset,
                       const std::filesystem::path& path) {
  while (!data.empty()) {
    ssize_t written = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", path);
    }
    data = data.subspan(static_cast<size_t>(written));
    offset += static_cast<uint64_t>(written);
  }
  return absl::OkStatus();
}

// Re-reads [0, bytes) into `digest`; false on a short file or read error (start over).
bool HashPrefix(int fd, uint64_t bytes, Sha256& digest) {
  std::vector<std::byte> buffer(kRehashBufferBytes);
  uint64_t offset = 0;
  while (offset < bytes) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), bytes - offset));
    ssize_t got = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    digest.Update(std::span<const std::byte>(buffer.data(), static_cast<size_t>(got)));
    offset += static_cast<uint64_t>(got);
  }
  return true;
}

}  // namespace

void HashPipeline::Add(ReadyChunk chunk) { waiting_.emplace(chunk.offset, chunk); }

std::vector<ReadyChunk> HashPipeline::TakeRun() {
  std::vector<ReadyChunk> run;
  if (run_out_) return run;
  uint64_t next = committed_bytes_;
  for (auto it = waiting_.find(next); it != waiting_.end() && it->first == next;
       it = waiting_.erase(it)) {
    run.push_back(it->second);
    next += it->second.data.size();
  }
  run_out_ = !run.empty();
  return run;
}

void HashPipeline::RunCommitted(uint64_t bytes) {
  committed_bytes_ += bytes;
  run_out_ = false;
}

FileWriter::FileWriter(std::filesystem::path path, uint64_t size, uint64_t written, Sha256 digest)
    : path_(std::move(path)),
      size_(size),
      resumed_bytes_(written),
      written_(written),
      digest_(std::move(digest)) {}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<FileWriter>> FileWriter::Open(const std::filesystem::path& path,
                                                             uint64_t size, uint64_t resume_from) {
  ScopedFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus(errno, "open", path);
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) return ErrnoStatus(errno, "stat", path);
  uint64_t current_size = static_cast<uint64_t>(info.st_size);

  Sha256 digest;
  uint64_t kept = std::min(resume_from, size);
  if (kept > current_size || (kept > 0 && !HashPrefix(fd.get(), kept, digest))) {
    kept = 0;
    digest = Sha256();
  }
  // Bytes past what we keep are stale; a longer file would otherwise keep its tail.
  if (kept == 0 || current_size > size) {
    if (::ftruncate(fd.get(), static_cast<off_t>(kept == 0 ? 0 : size)) != 0) {
      return ErrnoStatus(errno, "truncate", path);
    }
  }
  if (size > 0) {
    int error = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size));
    if (error == EOPNOTSUPP || error == EINVAL) {
      // The file system cannot preallocate (some NFS, tmpfs on old kernels): set the size.
      if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
        return ErrnoStatus(errno, "truncate", path);
      }
    } else if (error != 0) {
      return ErrnoStatus(error, absl::StrCat("preallocate ", size, " bytes for"), path);
    }
  }
  auto writer = std::unique_ptr<FileWriter>(new FileWriter(path, size, kept, std::move(digest)));
  if (writer->complete()) RETURN_IF_ERROR(writer->Finish());
  return writer;
}

absl::Status FileWriter::WriteRun(std::span<const ReadyChunk> run) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(fd_mutex_);
    if (fd_ < 0) {
      fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
      if (fd_ < 0) return ErrnoStatus(errno, "open", path_);
    }
    fd = fd_;
  }
  for (const ReadyChunk& chunk : run) {
    if (chunk.offset != written_ || chunk.data.size() > size_ - written_) {
      return absl::InternalError(absl::StrCat("write ", path_.string(), ": chunk at ", chunk.offset,
                                              " is out of order (", written_, " written)"));
    }
    RETURN_IF_ERROR(PwriteAll(fd, chunk.data, chunk.offset, path_));
    digest_.Update(chunk.data);
    written_ += chunk.data.size();
  }
  if (!complete()) return absl::OkStatus();
  return Finish();
}

absl::Status FileWriter::Finish() {
  std::lock_guard<std::mutex> lock(fd_mutex_);
  int fd = fd_ >= 0 ? fd_ : ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path_);
  fd_ = -1;
  ScopedFd closer(fd);
  struct stat info;
  if (::fstat(fd, &info) != 0) return ErrnoStatus(errno, "stat", path_);
  if (static_cast<uint64_t>(info.st_size) != size_) {
    return absl::DataLossError(absl::StrCat("size mismatch (want ", size_, ", got ",
                                            info.st_size, ")"));
  }
  if (::fdatasync(fd) != 0) return ErrnoStatus(errno, "fdatasync", path_);
  sha256_hex_ = digest_.FinishHex();
  return absl::OkStatus();
}

absl::Status FileWriter::Sync() {
  std::lock_guard<std::mutex> lock(fd_mutex_);
  if (fd_ < 0) return absl::OkStatus();
  if (::fdatasync(fd_) != 0) return ErrnoStatus(errno, "fdatasync", path_);
  return absl::OkStatus();
}

}  // namespace modelcache
