#include "agent/fill/chunk_planner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace modelcache {

namespace {

void AddChunks(size_t index, uint64_t from, uint64_t to, uint64_t chunk_size,
               std::vector<PlannedChunk>& chunks) {
  for (uint64_t offset = from; offset < to;) {
    const uint64_t length = std::min(chunk_size, to - offset);
    chunks.push_back(PlannedChunk{index, offset, length});
    offset += length;
  }
}

}  // namespace

absl::StatusOr<std::vector<PlannedChunk>> PlanChunks(std::span<const uint64_t> file_sizes,
                                                     std::span<const FileResume> present,
                                                     uint64_t chunk_size) {
  if (chunk_size == 0) return absl::InvalidArgumentError("chunk size must be positive");
  if (file_sizes.size() != present.size()) {
    return absl::InvalidArgumentError(absl::StrCat("chunk plan: ", file_sizes.size(),
                                                   " file sizes but ", present.size(),
                                                   " resume states"));
  }
  std::vector<PlannedChunk> chunks;
  for (size_t index = 0; index < file_sizes.size(); ++index) {
    const uint64_t size = file_sizes[index];
    const FileResume& have = present[index];
    if (have.prefix > size) {
      return absl::InvalidArgumentError(absl::StrCat("chunk plan: file ", index, ": committed prefix ",
                                                     have.prefix, " exceeds its size ", size));
    }
    uint64_t next = have.prefix;  // the first byte not known to be on disk
    for (const ByteRange& range : have.written) {
      if (range.offset < next || range.offset > size || range.length > size - range.offset) {
        return absl::InvalidArgumentError(absl::StrCat(
            "chunk plan: file ", index, ": written range ", range.offset, "+", range.length,
            " overlaps what comes before it or runs past its size ", size));
      }
      AddChunks(index, next, range.offset, chunk_size, chunks);
      next = range.end();
    }
    AddChunks(index, next, size, chunk_size, chunks);
  }
  return chunks;
}

absl::StatusOr<std::vector<PlannedChunk>> PlanChunks(std::span<const uint64_t> file_sizes,
                                                     std::span<const uint64_t> committed_prefixes,
                                                     uint64_t chunk_size) {
  if (file_sizes.size() != committed_prefixes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("chunk plan: ", file_sizes.size(), " file sizes but ",
                                                   committed_prefixes.size(), " committed prefixes"));
  }
  std::vector<FileResume> present(committed_prefixes.size());
  for (size_t i = 0; i < present.size(); ++i) present[i].prefix = committed_prefixes[i];
  return PlanChunks(file_sizes, present, chunk_size);
}

absl::StatusOr<std::vector<PlannedChunk>> PlanChunks(std::span<const uint64_t> file_sizes,
                                                     uint64_t chunk_size) {
  std::vector<uint64_t> nothing_committed(file_sizes.size(), 0);
  return PlanChunks(file_sizes, nothing_committed, chunk_size);
}

}  // namespace modelcache
