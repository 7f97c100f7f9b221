#include "agent/fill/chunk_planner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace modelcache {

absl::StatusOr<std::vector<PlannedChunk>> PlanChunks(std::span<const uint64_t> file_sizes,
                                                     std::span<const uint64_t> committed_prefixes,
                                                     uint64_t chunk_size) {
  if (chunk_size == 0) return absl::InvalidArgumentError("chunk size must be positive");
  if (file_sizes.size() != committed_prefixes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("chunk plan: ", file_sizes.size(), " file sizes but ",
                                                   committed_prefixes.size(), " committed prefixes"));
  }
  std::vector<PlannedChunk> chunks;
  for (size_t index = 0; index < file_sizes.size(); ++index) {
    const uint64_t size = file_sizes[index];
    const uint64_t committed = committed_prefixes[index];
    if (committed > size) {
      return absl::InvalidArgumentError(absl::StrCat("chunk plan: file ", index, ": committed prefix ",
                                                     committed, " exceeds its size ", size));
    }
    for (uint64_t offset = committed; offset < size;) {
      const uint64_t length = std::min(chunk_size, size - offset);
      chunks.push_back(PlannedChunk{index, offset, length});
      offset += length;
    }
  }
  return chunks;
}

absl::StatusOr<std::vector<PlannedChunk>> PlanChunks(std::span<const uint64_t> file_sizes,
                                                     uint64_t chunk_size) {
  std::vector<uint64_t> nothing_committed(file_sizes.size(), 0);
  return PlanChunks(file_sizes, nothing_committed, chunk_size);
}

}  // namespace modelcache
