#pragma once
// Writing and hashing one file of a fill. Chunks arrive in any order and are written in any
// order (FileWriter::WriteAt, in parallel on the workers), but SHA-256 must see the bytes in
// file order: HashPipeline (loop side) holds written chunks by offset and hands out the
// contiguous run that starts at the committed offset; FileWriter::HashRun (worker side) feeds
// that run to the digest. At most one run per file is in the workers at a time, so the digest
// needs no lock, files hash in parallel, and network I/O never waits for hashing.
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "agent/fill/resume_plan.h"

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

}  // namespace modelcache
