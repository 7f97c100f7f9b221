#pragma once
// Splits a model's files into the byte ranges the fill fetches. Pure: no I/O, no clock.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/fill/resume_plan.h"

namespace modelcache {

struct PlannedChunk {
  size_t file_index = 0;  // into the file list given to PlanChunks
  uint64_t offset = 0;
  uint64_t length = 0;    // > 0; chunk_size except for a file's last chunk

  friend bool operator==(const PlannedChunk&, const PlannedChunk&) = default;
};

// The chunks still to fetch, in the order the fill should start them: files in the given
// order, each file's chunks by ascending offset, from its committed prefix (bytes already
// written and verified by an earlier, interrupted fill) to its end. A file whose prefix is
// its whole size (including every zero-size file) has no chunk, but the fill must still
// create it. INVALID_ARGUMENT if chunk_size is 0, the two lists differ in length, or a
// committed prefix exceeds its file's size (the message names the file index).
absl::StatusOr<std::vector<PlannedChunk>> PlanChunks(std::span<const uint64_t> file_sizes,
                                                     std::span<const uint64_t> committed_prefixes,
                                                     uint64_t chunk_size);

// The chunks still to fetch for a resumed fill: every byte of each file that `present`
// (resume_plan.h) does not hold, files in the given order, each file's gaps by ascending
// offset, each gap split into chunks of chunk_size from its start (the last one short).
// INVALID_ARGUMENT if chunk_size is 0, the two lists differ in length, or a file's present
// bytes run past its size or are not sorted and disjoint (the message names the file index).
absl::StatusOr<std::vector<PlannedChunk>> PlanChunks(std::span<const uint64_t> file_sizes,
                                                     std::span<const FileResume> present,
                                                     uint64_t chunk_size);

// Same, for a fill that starts from nothing.
absl::StatusOr<std::vector<PlannedChunk>> PlanChunks(std::span<const uint64_t> file_sizes,
                                                     uint64_t chunk_size);

}  // namespace modelcache
