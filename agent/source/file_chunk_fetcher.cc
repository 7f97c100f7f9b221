// pread on libuv's thread pool. Loop-thread only, like every ChunkFetcher.
//
// Every chunk opens its file again through the listing's FileTree (file_tree.h), never by
// the path string alone: a link swapped into the source after the listing cannot lead a
// read out of the allowed folder.
//
// Whole blocks read into block-aligned buffers bypass the page cache (O_DIRECT) where the
// file system allows it: a copy reads each source byte once, and pulling a cold model into
// the page cache first costs more CPU than the rest of the fill (page allocation and copy).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/loop/event_loop.h"
#include "agent/source/chunk_fetcher.h"
#include "agent/source/file_tree.h"
#include "common/status_annotate.h"

namespace modelcache {
namespace {

// Reads go in slices so that Cancel() waits for at most one slice, not a whole chunk.
constexpr size_t kSliceBytes = 1 << 20;
// What O_DIRECT needs of the buffer, the offset and the length (whole logical blocks).
constexpr size_t kDirectIoAlignment = 4096;

bool Aligned(uint64_t value) { return value % kDirectIoAlignment == 0; }


// Shared by the worker thread (which fills `buffer`) and the loop thread (which may cancel).
struct FileRead {
  std::shared_ptr<const FileTree> tree;
  std::string path;
  uint64_t expected_size = 0;
  uint64_t offset = 0;
  std::span<std::byte> buffer;
  bool direct_io = true;
  std::string what;  // "read <path> bytes=a-b"
  std::mutex mutex;
  bool cancelled = false;  // guarded by mutex; once set, the worker no longer touches buffer
  absl::Status result;     // written by the worker, read by the loop thread after it ends
};

absl::Status ReadChunk(FileRead& read) {
  if (read.tree == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(read.what, ": the source was not listed"));
  }
  absl::StatusOr<FileDescriptor> opened = read.tree->OpenForRead(read.path, /*direct=*/false);
  if (!opened.ok()) {
    return Annotate(opened.status(), read.what);
  }
  const int fd = opened->get();
  struct stat info {};
  if (::fstat(fd, &info) != 0) return SourceErrnoStatus(errno, read.what);
  if (static_cast<uint64_t>(info.st_size) != read.expected_size) {
    return absl::AbortedError(absl::StrCat(read.what, ": file changed at the source (size ", info.st_size,
                                           ", listing had ", read.expected_size, ")"));
  }
  // -1 when the file system has no direct I/O (EINVAL: tmpfs before Linux 6.6, some FUSE).
  FileDescriptor direct_file(-1);
  if (read.direct_io && Aligned(reinterpret_cast<uintptr_t>(read.buffer.data())) &&
      Aligned(read.offset) && read.buffer.size() >= kDirectIoAlignment) {
    absl::StatusOr<FileDescriptor> direct_opened = read.tree->OpenForRead(read.path, /*direct=*/true);
    struct stat direct_info {};
    if (direct_opened.ok() && ::fstat(direct_opened->get(), &direct_info) == 0) {
      if (direct_info.st_dev != info.st_dev || direct_info.st_ino != info.st_ino) {
        return absl::AbortedError(absl::StrCat(read.what, ": file changed at the source (replaced while read)"));
      }
      direct_file = std::move(*direct_opened);
    }
  }
  int direct_fd = direct_file.get();
  size_t done = 0;
  while (done < read.buffer.size()) {
    std::lock_guard lock(read.mutex);
    if (read.cancelled) return absl::CancelledError(read.what);
    size_t want = std::min(kSliceBytes, read.buffer.size() - done);
    // The last partial block of a chunk goes through the cache.
    const bool direct = direct_fd >= 0 && Aligned(done) && want >= kDirectIoAlignment;
    if (direct) want = want / kDirectIoAlignment * kDirectIoAlignment;
    ssize_t got = ::pread(direct ? direct_fd : fd, read.buffer.data() + done, want,
                          static_cast<off_t>(read.offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && direct) {
        direct_fd = -1;  // the device wants a larger alignment: read through the cache
        continue;
      }
      return SourceErrnoStatus(errno, read.what);
    }
    if (got == 0) {
      return absl::AbortedError(absl::StrCat(read.what, ": file changed at the source (ends at ",
                                             read.offset + done, ")"));
    }
    done += static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

class FileChunkFetcher final : public ChunkFetcher {
 public:
  FileChunkFetcher(EventLoop& loop, bool direct_io, std::shared_ptr<const FileTree> tree)
      : loop_(loop), direct_io_(direct_io), tree_(std::move(tree)) {}

  ~FileChunkFetcher() override {
    *alive_ = false;
    for (auto& [id, pending] : reads_) Stop(*pending.read);
  }

  uint64_t Fetch(const ChunkRequest& request, DoneFn done) override {
    auto read = std::make_shared<FileRead>();
    read->tree = tree_;
    read->path = request.file->location;
    read->expected_size = request.file->size;
    read->offset = request.offset;
    read->buffer = request.buffer;
    read->direct_io = direct_io_;
    read->what = absl::StrCat("read ", read->path, " bytes=", request.offset, "-",
                              request.offset + request.buffer.size() - 1);
    const uint64_t id = next_id_++;
    reads_.emplace(id, Pending{read, std::move(done)});
    loop_.RunBlocking([read] { read->result = ReadChunk(*read); },
                      [this, alive = alive_, id] {
                        if (!*alive) return;
                        auto it = reads_.find(id);
                        if (it == reads_.end()) return;  // cancelled
                        Pending pending = std::move(it->second);
                        reads_.erase(it);
                        pending.done(pending.read->result);  // may destroy this fetcher
                      });
    return id;
  }

  void Cancel(uint64_t fetch_id) override {
    auto it = reads_.find(fetch_id);
    if (it == reads_.end()) return;
    Stop(*it->second.read);
    reads_.erase(it);
  }

  size_t InFlight() const override { return reads_.size(); }

 private:
  struct Pending {
    std::shared_ptr<FileRead> read;  // shared with the worker, which may still run
    DoneFn done;
  };

  // Blocks for at most one slice in progress; afterwards the caller may reuse the buffer.
  static void Stop(FileRead& read) {
    std::lock_guard lock(read.mutex);
    read.cancelled = true;
  }

  EventLoop& loop_;
  const bool direct_io_;
  const std::shared_ptr<const FileTree> tree_;
  std::unordered_map<uint64_t, Pending> reads_;
  uint64_t next_id_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

std::unique_ptr<ChunkFetcher> MakeFileChunkFetcher(EventLoop& loop, const FillSettings& settings,
                                                   std::shared_ptr<const FileTree> tree) {
  return std::make_unique<FileChunkFetcher>(loop, settings.direct_io, std::move(tree));
}

}  // namespace modelcache
