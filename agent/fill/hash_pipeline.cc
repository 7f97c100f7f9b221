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
    next += it->second.data.size();
  }
  run_out_ = !run.empty();
  return run;
}

void HashPipeline::RunCommitted(uint64_t bytes) {
  committed_bytes_ += bytes;
  run_out_ = false;
}

}  // namespace modelcache
