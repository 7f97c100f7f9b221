#include "agent/fill/file_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

// pwrites all of `data` at `offset`; 0 or the errno of the failed call. `*written` counts the
// bytes that made it, so a caller can go on with the rest another way.
int PwriteAll(int fd, std::span<const std::byte> data, uint64_t offset, size_t* written) {
  *written = 0;
  while (*written < data.size()) {
    ssize_t done = ::pwrite(fd, data.data() + *written, data.size() - *written,
                            static_cast<off_t>(offset + *written));
    if (done < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (done == 0) return EIO;  // cannot happen for a regular file; never loop forever
    *written += static_cast<size_t>(done);
  }
  return 0;
}

// Re-reads [from, from + bytes) into `digest`; 0, or the errno of a failed read (EIO for a
// file that ends early).
int HashRange(int fd, uint64_t from, uint64_t bytes, Sha256& digest) {
  std::vector<std::byte> buffer(static_cast<size_t>(std::min<uint64_t>(kRehashBufferBytes, bytes)));
  uint64_t offset = from;
  const uint64_t end = from + bytes;
  while (offset < end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), end - offset));
    ssize_t got = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno;
    if (got == 0) return EIO;
    digest.Update(std::span<const std::byte>(buffer.data(), static_cast<size_t>(got)));
    offset += static_cast<uint64_t>(got);
  }
  return 0;
}

}  // namespace

FileWriter::FileWriter(std::filesystem::path path, uint64_t size, uint64_t hashed, Sha256 digest,
                       bool direct_io, bool kept_past_prefix)
    : path_(std::move(path)),
      size_(size),
      resumed_bytes_(hashed),
      kept_past_prefix_(kept_past_prefix),
      hashed_(hashed),
      digest_(std::move(digest)),
      direct_refused_(!direct_io) {}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

absl::StatusOr<std::unique_ptr<FileWriter>> FileWriter::Open(const std::filesystem::path& path,
                                                             uint64_t size, uint64_t resume_from,
                                                             bool direct_io, bool keep_past_prefix) {
  ScopedFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus(errno, "open", path);
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) return ErrnoStatus(errno, "stat", path);
  uint64_t current_size = static_cast<uint64_t>(info.st_size);

  Sha256 digest;
  uint64_t kept = std::min(resume_from, size);
  bool prefix_read = true;
  if (kept > current_size || (kept > 0 && HashRange(fd.get(), 0, kept, digest) != 0)) {
    kept = 0;
    digest = Sha256();
    prefix_read = false;
  }
  // The journal's chunks past the prefix were written into a file of exactly this size.
  const bool kept_past_prefix = keep_past_prefix && prefix_read && current_size == size;
  // Bytes past what we keep are stale; a longer file would otherwise keep its tail.
  if (!kept_past_prefix && (kept == 0 || current_size > size)) {
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
  auto writer = std::unique_ptr<FileWriter>(
      new FileWriter(path, size, kept, std::move(digest), direct_io, kept_past_prefix));
  if (writer->complete()) RETURN_IF_ERROR(writer->Finish());
  return writer;
}

absl::Status FileWriter::Descriptors(int* buffered, int* direct) {
  std::lock_guard<std::mutex> lock(fd_mutex_);
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) return ErrnoStatus(errno, "open", path_);
  }
  if (direct_fd_ < 0 && !direct_refused_) {
    direct_fd_ = ::open(path_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    // EINVAL: the file system has no direct I/O (tmpfs before Linux 6.6, some FUSE).
    if (direct_fd_ < 0) direct_refused_ = true;
  }
  *buffered = fd_;
  *direct = direct_refused_ ? -1 : direct_fd_;
  return absl::OkStatus();
}

void FileWriter::DisableDirect() {
  // The descriptor stays open: another WriteAt may still be using it.
  std::lock_guard<std::mutex> lock(fd_mutex_);
  direct_refused_ = true;
}

absl::Status FileWriter::WriteAt(uint64_t offset, std::span<const std::byte> data) {
  if (offset > size_ || data.size() > size_ - offset) {
    return absl::InternalError(absl::StrCat("write ", path_.string(), ": ", data.size(),
                                            " bytes at ", offset, " go past its size ", size_));
  }
  int buffered = -1;
  int direct = -1;
  RETURN_IF_ERROR(Descriptors(&buffered, &direct));
  const bool aligned = reinterpret_cast<uintptr_t>(data.data()) % kDirectIoAlignment == 0 &&
                       offset % kDirectIoAlignment == 0;
  if (direct >= 0 && aligned) {
    std::span<const std::byte> blocks = data.first(data.size() / kDirectIoAlignment * kDirectIoAlignment);
    size_t written = 0;
    int error = PwriteAll(direct, blocks, offset, &written);
    if (error == EINVAL) {
      // The device wants a larger alignment than ours: the rest goes through the cache.
      DisableDirect();
    } else if (error != 0) {
      return ErrnoStatus(error, "write", path_);
    }
    data = data.subspan(written);
    offset += written;
  }
  size_t written = 0;
  int error = PwriteAll(buffered, data, offset, &written);
  if (error != 0) return ErrnoStatus(error, "write", path_);
  return absl::OkStatus();
}

absl::Status FileWriter::HashRun(std::span<const ReadyChunk> run) {
  for (const ReadyChunk& chunk : run) {
    if (chunk.offset != hashed_ || chunk.Length() > size_ - hashed_) {
      return absl::InternalError(absl::StrCat("hash ", path_.string(), ": chunk at ", chunk.offset,
                                              " is out of order (", hashed_, " hashed)"));
    }
    if (chunk.OnDisk()) {
      // Written by an interrupted fill: the digest reads it back from the file.
      int buffered = -1;
      int direct = -1;
      RETURN_IF_ERROR(Descriptors(&buffered, &direct));
      if (int error = HashRange(buffered, chunk.offset, chunk.on_disk_bytes, digest_); error != 0) {
        return ErrnoStatus(error, absl::StrCat("read back ", chunk.on_disk_bytes, " bytes at ",
                                               chunk.offset, " of"),
                           path_);
      }
    } else {
      digest_.Update(chunk.data);
    }
    hashed_ += chunk.Length();
  }
  if (!complete()) return absl::OkStatus();
  return Finish();
}

absl::Status FileWriter::WriteRun(std::span<const ReadyChunk> run) {
  uint64_t next = hashed_;
  for (const ReadyChunk& chunk : run) {
    if (chunk.offset != next) {
      return absl::InternalError(absl::StrCat("write ", path_.string(), ": chunk at ", chunk.offset,
                                              " is out of order (", next, " written)"));
    }
    if (!chunk.OnDisk()) RETURN_IF_ERROR(WriteAt(chunk.offset, chunk.data));
    next += chunk.Length();
  }
  return HashRun(run);
}

absl::Status FileWriter::Finish() {
  std::lock_guard<std::mutex> lock(fd_mutex_);
  if (direct_fd_ >= 0) {
    ::close(direct_fd_);
    direct_fd_ = -1;
  }
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
  // Also makes the direct writes durable: the device's write cache is flushed.
  if (::fdatasync(fd) != 0) return ErrnoStatus(errno, "fdatasync", path_);
  sha256_hex_ = digest_.FinishHex();
  return absl::OkStatus();
}

absl::Status FileWriter::Sync() {
  int fd;
  {
    // A duplicate, so that writers are not held up while fdatasync waits for the disk.
    std::lock_guard<std::mutex> lock(fd_mutex_);
    if (fd_ < 0) return absl::OkStatus();
    fd = ::dup(fd_);
    if (fd < 0) return ErrnoStatus(errno, "dup descriptor of", path_);
  }
  ScopedFd closer(fd);
  if (::fdatasync(fd) != 0) return ErrnoStatus(errno, "fdatasync", path_);
  return absl::OkStatus();
}

}  // namespace modelcache
