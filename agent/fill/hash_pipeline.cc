#include "agent/fill/hash_pipeline.h"

#include <utility>

namespace modelcache {

void HashPipeline::Add(ReadyChunk chunk) { waiting_.emplace(chunk.offset, chunk); }

std::vector<ReadyChunk> HashPipeline::TakeRun() {
  std::vector<ReadyChunk> run;
  if (run_out_) return run;
  uint64_t next = committed_bytes_;
  for (auto it = waiting_.find(next); it != waiting_.end() && it->first == next;
       it = waiting_.erase(it)) {
    run.push_back(it->second);
    next += it->second.Length();
  }
  run_out_ = !run.empty();
  out_.clear();
  if (run_out_) out_.push_back({committed_bytes_, next - committed_bytes_});
  return run;
}

void HashPipeline::RunCommitted(uint64_t bytes) {
  committed_bytes_ += bytes;
  run_out_ = false;
  out_.clear();
}

std::vector<ByteRange> HashPipeline::Uncommitted() const {
  std::vector<ByteRange> ranges = out_;
  for (const auto& [offset, chunk] : waiting_) ranges.push_back({offset, chunk.Length()});
  return MergeRanges(std::move(ranges));
}

}  // namespace modelcache
