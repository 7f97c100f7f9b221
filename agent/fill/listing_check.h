#pragma once
// What a fill checks in a source's listing before it writes anything. Pure: no I/O.
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/source/source.h"

namespace modelcache {

// The largest file a fill can lay out: a file's size and offsets are off_t, a signed 64-bit
// number, so a bigger listed size would only fail later, at preallocation or truncate.
inline constexpr uint64_t kMaxListedFileBytes = static_cast<uint64_t>(INT64_MAX);

// OK when the listing can be laid out as a model: NOT_FOUND for an empty listing (unless it
// has archives to unpack, as an OCI modelcar does);
// INVALID_ARGUMENT naming the file for a bad path, a path listed twice, a file that is also
// a folder of another, a size over kMaxListedFileBytes, or sizes whose sum does not fit in
// 64 bits (a lying origin: it would pass the space check by wrapping around).
absl::Status CheckListing(std::span<const SourceFile> files, bool has_archives = false);

// The sum of the listed sizes; INVALID_ARGUMENT naming the file at which the sum would pass
// 2^64 - 1 bytes.
absl::StatusOr<uint64_t> ListedTotalBytes(std::span<const SourceFile> files);

}  // namespace modelcache
