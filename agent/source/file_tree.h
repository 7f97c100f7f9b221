#pragma once
// How the agent reads a file:// source: through a folder it holds open, never following a
// link out of it, for the listing and for every chunk read alike.
//
//   fileSources: [/mnt/models]              (agent config; none by default)
//   file:///mnt/models/llama/v1/            the source: beneath an allowed folder, as written
//        root fd = open("/mnt/models")      the operator's folder; links in its own path are trusted
//        source  = OpenBeneath(root fd, "llama/v1")
//        file    = OpenBeneath(source, "weights/a.bin")   (a directory source)
//        file    = OpenBeneath(root fd, "llama/v1/a.bin") (a single-file source)
//
// A link is followed only when it is relative and its target stays beneath that folder: the
// allowed root for a single-file source, the source's own directory for a directory source
// (the model is the tree, not what its links reach). Absolute links and /proc magic links are
// never followed. FIFOs, devices and sockets are never opened for reading.
// modelcachectl's local fill passes no allowed roots: it reads with its caller's own rights,
// so the source itself may be anywhere (links included); a directory source's links still
// stay in the directory.
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/source/source.h"
#include "common/file_descriptor.h"

namespace modelcache {

// errno from reading a source -> status: NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE for what a
// network file system recovers from (EIO, EAGAIN, EINTR, ESTALE, ETIMEDOUT: the fill retries),
// else INTERNAL. Message: "<message>: <strerror>". (common/fs.h's ErrnoStatus is for the
// cache's own writes, where ENOSPC and EEXIST matter and nothing is retried.)
absl::Status SourceErrnoStatus(int error, std::string message);

enum class ResolveMethod {
  kOpenat2,  // openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the kernel checks each step
  kWalk,     // one component at a time with O_NOFOLLOW, links read and checked here
};

// kOpenat2 when this process may call openat2 (Linux 5.6 and later, not blocked by a
// seccomp profile), else kWalk. Probes the kernel: one system call.
ResolveMethod DetectResolveMethod();

// Opens `relative` beneath the directory `dir_fd` with open(2) `flags` (O_CLOEXEC is added;
// with O_PATH only O_DIRECTORY may accompany it). ".." never climbs above dir_fd; each link,
// the last component's included, is followed only when relative and staying beneath dir_fd;
// magic links are not followed. "." is dir_fd itself. Returns the descriptor or -errno:
// -EXDEV when the path leads out of dir_fd (an absolute link included), -ELOOP for too many
// links or a magic link, otherwise as openat(2).
int OpenBeneath(int dir_fd, std::string_view relative, int flags, ResolveMethod method);

class FileTree {
 public:
  // Resolves the file:// source at `source` (absolute). With `allowed_roots` (the agent's
  // fileSources) it must lie beneath one of them, compared as written after lexical
  // normalization, and is resolved beneath it; otherwise PERMISSION_DENIED names the path and
  // the key fileSources. Without (nullopt) anything this process may open. NOT_FOUND when it is
  // missing; INVALID_ARGUMENT when it is a FIFO, device or socket.
  static absl::StatusOr<std::shared_ptr<const FileTree>> Open(
      const std::filesystem::path& source,
      const std::optional<std::vector<std::filesystem::path>>& allowed_roots,
      ResolveMethod method = DetectResolveMethod());

  const std::filesystem::path& SourcePath() const { return source_; }

  // The source's files: the one file, or every regular file under the directory (sorted by
  // path; FIFOs, devices and sockets skipped unopened; a link to a directory not descended).
  // location = the absolute path as listed; etag = "<size>-<mtime_ns>". A link that leads out
  // of the directory is INVALID_ARGUMENT, or PERMISSION_DENIED when it also leads out of the
  // allowed folders; either way the message names the link.
  absl::StatusOr<std::vector<SourceFile>> List() const;

  // Opens a listed file (its SourceFile::location) read-only through the same resolution as
  // the listing (O_DIRECT added when `direct`). INVALID_ARGUMENT when it is not a regular file
  // (any more); errors name `location`. Thread-safe.
  absl::StatusOr<FileDescriptor> OpenForRead(std::string_view location, bool direct) const;

 private:
  FileTree() = default;
  absl::Status ListDirectory(int dir_fd, const std::string& prefix, std::vector<SourceFile>& files) const;
  absl::Status LinkError(const std::string& relative, int error, int dir_fd, const std::string& name) const;
  absl::Status OpenError(std::string_view what, int error, std::string_view folder) const;

  std::filesystem::path source_;  // normalized, without a trailing '/'
  ResolveMethod method_ = ResolveMethod::kWalk;
  bool restricted_ = false;       // allowed roots apply
  std::string roots_text_;        // "[/mnt/models, /data]" for messages
  std::filesystem::path root_;    // the allowed folder holding the source (restricted)
  FileDescriptor root_fd_{-1};    // O_PATH of root_ (restricted)
  std::string source_relative_;   // source_ beneath root_; "." for root_ itself
  FileDescriptor source_fd_{-1};  // O_PATH of the source, a directory or a regular file
  struct stat info_ {};           // of the source (a link's target)
};

}  // namespace modelcache
