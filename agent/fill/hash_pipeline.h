#pragma once
// Writing and hashing one file of a fill. Chunks arrive in any order and are written in any
// order (FileWriter::WriteAt, in parallel on the workers), but SHA-256 must see the bytes in
// file order: HashPipeline (loop side) holds written chunks by offset and hands out the
// contiguous run that starts at the committed offset; FileWriter::HashRun (worker side) feeds
// that run to the digest. At most one run per file is in the workers at a time, so the digest
// needs no lock, files hash in parallel, and network I/O never waits for hashing.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/fill/resume_plan.h"
#include "common/sha256.h"

namespace modelcache {

// A written chunk waiting to be hashed. `buffer` is the caller's id for the memory behind
// `data`, handed back when the chunk is committed. A chunk that an interrupted fill wrote and
// journaled (resume_plan.h) has no memory: `data` is empty and its `on_disk_bytes` are read
// back from the file when it is hashed.
struct ReadyChunk {
  uint64_t offset = 0;
  std::span<const std::byte> data;
  size_t buffer = 0;
  uint64_t on_disk_bytes = 0;

  bool OnDisk() const { return data.empty(); }
  uint64_t Length() const { return OnDisk() ? on_disk_bytes : data.size(); }
};

// Loop-thread bookkeeping of one file: which chunks wait, what is committed.
class HashPipeline {
 public:
  // `committed_bytes`: the prefix already written and hashed (resume), where the next run starts.
  explicit HashPipeline(uint64_t committed_bytes = 0) : committed_bytes_(committed_bytes) {}

  // A chunk was fetched. Its offset must be at or beyond the committed offset and not
  // already waiting.
  void Add(ReadyChunk chunk);
  // When no run is out and the chunk at the committed offset is here: removes and returns
  // the contiguous run starting there, and marks a run as out. Otherwise empty.
  std::vector<ReadyChunk> TakeRun();
  // The run from TakeRun was written and hashed: the committed offset moves past it.
  void RunCommitted(uint64_t bytes);
  // The run failed; the pipeline is unusable afterwards (the fill ends).
  void RunFailed() { run_out_ = false; }

  uint64_t committed_bytes() const { return committed_bytes_; }
  bool run_out() const { return run_out_; }
  size_t waiting() const { return waiting_.size(); }
  // The chunks added and not committed yet (waiting, or in the run that is out): written
  // past the committed offset, what the journal records besides it. Merged, by offset.
  std::vector<ByteRange> Uncommitted() const;

 private:
  uint64_t committed_bytes_;
  bool run_out_ = false;
  std::vector<ByteRange> out_;  // the run that is out
  std::map<uint64_t, ReadyChunk> waiting_;
};

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
