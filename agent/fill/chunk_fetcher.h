#pragma once
// Fetches one byte range of one source file into a caller-owned buffer. Loop-thread only.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "agent/fill/address_policy.h"
#include "agent/fill/fill_settings.h"
#include "agent/fill/source.h"

namespace modelcache {

class EventLoop;
class FileTree;

struct ChunkRequest {
  const SourceFile* file = nullptr;  // outlives the fetch
  uint64_t offset = 0;
  std::span<std::byte> buffer;       // exactly the chunk's length; outlives the fetch
};

class ChunkFetcher {
 public:
  // ok: buffer holds the bytes [offset, offset + buffer.size()). Errors are classified so the
  // fill knows whether a retry can help:
  //   UNAVAILABLE        network error, 5xx, 429, short read, wrong Content-Range (retryable);
  //                      also HTTP 200 with the whole file to a range request for part of it
  //                      (IsRangeIgnored; the connection is dropped, a retry usually gets 206)
  //   DEADLINE_EXCEEDED  no progress for stall_timeout (retryable)
  //   NOT_FOUND          404 / missing file;  PERMISSION_DENIED  401/403, an address the
  //                      network policy refuses, a file:// link out of its folder
  //   INVALID_ARGUMENT   a file:// path that is no longer a regular file (FIFO, device, ...)
  //   ABORTED            the file changed at the source (ETag or size differs from the listing)
  //   RESOURCE_EXHAUSTED  local: no space;  INTERNAL  anything else
  // Messages name the URL or path and the range.
  using DoneFn = std::function<void(absl::Status)>;
  // Takes the next bytes of a streamed body, `offset` being their position in the file, and
  // returns how many it took. Runs on the loop thread inside the fetcher's callbacks: it must
  // not call the fetcher.
  using DataFn = std::function<size_t(uint64_t offset, std::span<const std::byte> data)>;

  virtual ~ChunkFetcher() = default;
  // Starts the fetch; `done` runs exactly once on the loop thread unless Cancel is called first.
  virtual uint64_t Fetch(const ChunkRequest& request, DoneFn done) = 0;
  // Stops a fetch in flight; its `done` is never called. Unknown ids are ignored.
  virtual void Cancel(uint64_t fetch_id) = 0;
  virtual size_t InFlight() const = 0;

  // For origins that ignore Range: one GET of the whole file (no Range header), its body
  // handed to `on_data` in order from offset 0. When `on_data` takes fewer bytes than it was
  // given, the transfer pauses (not a stall) until Resume(id). `done` runs as for Fetch: ok
  // once the whole body (file.size bytes, with the listed ETag) was taken. Cancel stops it.
  // Returns 0 when this fetcher cannot stream (local files), and then never calls back.
  virtual uint64_t Stream(const SourceFile& /*file*/, DataFn /*on_data*/, DoneFn /*done*/) { return 0; }
  // Offers a paused stream's held bytes to `on_data` again and lets it read on when all
  // were taken. May call `on_data` before it returns. Unknown ids are ignored.
  virtual void Resume(uint64_t /*fetch_id*/) {}
};

// The error for an HTTP 200 with the whole file to a range request for part of it:
// UNAVAILABLE (retryable), marked so that IsRangeIgnored tells it from other failures.
absl::Status RangeIgnoredError(std::string message);
bool IsRangeIgnored(const absl::Status& status);

// Range GETs through libcurl's multi-socket API driven by `loop` (HTTP/1.1 keep-alive
// connection reuse; `auth` added to every request). Each connection, redirects included, goes
// only to an address `network` allows (curl_network_guard.h); a refused one fails the chunk
// with PERMISSION_DENIED.
std::unique_ptr<ChunkFetcher> MakeHttpChunkFetcher(EventLoop& loop, HttpAuth auth,
                                                   const FillSettings& settings, NetworkPolicy network);
// pread on libuv's thread pool from SourceFile::location, opened through `tree` (the listing's
// FileTree, file_tree.h; null fails every read); whole blocks into aligned buffers go past the
// page cache (O_DIRECT) when settings.direct_io and the file system allow it.
std::unique_ptr<ChunkFetcher> MakeFileChunkFetcher(EventLoop& loop, const FillSettings& settings,
                                                   std::shared_ptr<const FileTree> tree);

}  // namespace modelcache
