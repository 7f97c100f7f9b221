#pragma once
// Fetches one byte range of one source file into a caller-owned buffer. Loop-thread only.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

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
  //   UNAVAILABLE        network error, 5xx, 429, short read, wrong Content-Range (retryable)
  //   DEADLINE_EXCEEDED  no progress for stall_timeout (retryable)
  //   NOT_FOUND          404 / missing file;  PERMISSION_DENIED  401/403, an address the
  //                      network policy refuses, a file:// link out of its folder
  //   INVALID_ARGUMENT   a file:// path that is no longer a regular file (FIFO, device, ...)
  //   ABORTED            the file changed at the source (ETag or size differs from the listing)
  //   FAILED_PRECONDITION the origin answered 200 to a range request for part of a file
  //   RESOURCE_EXHAUSTED  local: no space;  INTERNAL  anything else
  // Messages name the URL or path and the range.
  using DoneFn = std::function<void(absl::Status)>;

  virtual ~ChunkFetcher() = default;
  // Starts the fetch; `done` runs exactly once on the loop thread unless Cancel is called first.
  virtual uint64_t Fetch(const ChunkRequest& request, DoneFn done) = 0;
  // Stops a fetch in flight; its `done` is never called. Unknown ids are ignored.
  virtual void Cancel(uint64_t fetch_id) = 0;
  virtual size_t InFlight() const = 0;
};

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
