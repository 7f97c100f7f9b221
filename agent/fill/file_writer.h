#pragma once
// The staging file of one file of a fill: written at any offset (in parallel on the workers),
// hashed in file order. hash_pipeline.h says which written chunks are ready to hash.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/fill/hash_pipeline.h"
#include "common/sha256.h"

namespace modelcache {

// The staging file being filled: its digest so far and (lazily) open descriptors.
// WriteAt calls may run concurrently with each other, with HashRun and with Sync; HashRun
// (and WriteRun) is called by one worker at a time (HashPipeline guarantees it).
//
// Writes of whole blocks from block-aligned memory bypass the page cache (O_DIRECT) where
// the file system allows it: filling the page cache with a new file costs about 2 CPU
// seconds per GB (page allocation and copy), more than receiving and hashing together.
// Other writes, and all writes on file systems without direct I/O, go through the cache.
class FileWriter {
 public:
  // Memory and offsets aligned to this (and whole multiples of it) can be written directly.
  static constexpr size_t kDirectIoAlignment = 4096;

  // Blocking. Creates `path` if needed and reserves `size` bytes for it (posix_fallocate;
  // ftruncate where the file system cannot; ENOSPC -> RESOURCE_EXHAUSTED). Keeps the first
  // `resume_from` bytes when the file is at least that long, re-reading them into the
  // digest; otherwise starts at 0. With `keep_past_prefix` (the journal names written chunks
  // past the prefix), a file that has exactly `size` bytes and whose prefix could be read
  // keeps its bytes past the prefix too (kept_past_prefix()). The descriptor is closed on
  // return. `direct_io` false: every write goes through the page cache.
  static absl::StatusOr<std::unique_ptr<FileWriter>> Open(const std::filesystem::path& path,
                                                          uint64_t size, uint64_t resume_from,
                                                          bool direct_io = true,
                                                          bool keep_past_prefix = false);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Bytes kept by Open (the first run starts there).
  uint64_t resumed_bytes() const { return resumed_bytes_; }
  // Whether Open kept the bytes past the prefix (then the journal's written chunks are good).
  bool kept_past_prefix() const { return kept_past_prefix_; }

  // Blocking. pwrites `data` at `offset` (any order; inside the file's size).
  absl::Status WriteAt(uint64_t offset, std::span<const std::byte> data);
  // Blocking. Adds the run (contiguous, starting at the bytes hashed so far, already written
  // with WriteAt, or on disk from an earlier fill: ReadyChunk::OnDisk) to the digest. When the file is then complete: checks its size,
  // fdatasyncs and closes it, and computes the digest (see Sha256Hex).
  absl::Status HashRun(std::span<const ReadyChunk> run);
  // Blocking. WriteAt for every chunk of the run, then HashRun.
  absl::Status WriteRun(std::span<const ReadyChunk> run);
  // Blocking. fdatasync if the file is open (a completed file was synced when it closed).
  absl::Status Sync();

  bool complete() const { return hashed_ == size_; }
  // Lowercase hex digest; set once complete.
  const std::string& Sha256Hex() const { return sha256_hex_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  FileWriter(std::filesystem::path path, uint64_t size, uint64_t hashed, Sha256 digest,
             bool direct_io, bool kept_past_prefix);
  absl::Status Finish();
  // The descriptors for a write, opened on first use: buffered, and direct (-1 when the file
  // system refuses O_DIRECT).
  absl::Status Descriptors(int* buffered, int* direct);
  void DisableDirect();

  const std::filesystem::path path_;
  const uint64_t size_;
  uint64_t resumed_bytes_;
  bool kept_past_prefix_;
  uint64_t hashed_;  // only the run's worker touches these three
  Sha256 digest_;
  std::string sha256_hex_;
  std::mutex fd_mutex_;  // guards the descriptors: writes open them, Finish closes, Sync dups
  int fd_ = -1;
  int direct_fd_ = -1;
  bool direct_refused_ = false;
};

}  // namespace modelcache
