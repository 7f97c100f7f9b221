#pragma once
// Tunables of the fill engine, from the agent's config.
#include <chrono>
#include <cstdint>

namespace modelcache {

struct RetrySettings {
  uint32_t max_attempts = 6;                       // per chunk, including the first
  std::chrono::milliseconds initial_backoff{200};  // doubled each attempt, with full jitter
  std::chrono::milliseconds max_backoff{10'000};
};

struct FillSettings {
  uint32_t concurrency = 16;                  // range requests (or local reads) in flight
  uint64_t chunk_size = 8ull << 20;           // bytes per request
  std::chrono::seconds stall_timeout{30};     // a chunk without progress this long is retried
  std::chrono::milliseconds journal_interval{1000};  // how often the resume journal is saved
  // Write staging files, and read file:// sources, past the page cache where the file system
  // allows (file_writer.h). Off: everything goes through the page cache (e.g. for an NFS
  // volume, where direct writes are synchronous round trips to the server).
  bool direct_io = true;
  RetrySettings retry;
};

}  // namespace modelcache
