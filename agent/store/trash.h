#pragma once
// Deletion without half-deleted models: rename into trash/ (atomic), delete later.
#include <filesystem>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/store/layout.h"

namespace modelcache {

// Renames `victim` (a model dir or a staging dir) to a unique name under trash/ and returns
// it. NOT_FOUND when `victim` does not exist.
absl::StatusOr<std::filesystem::path> MoveToTrash(const CacheLayout& layout,
                                                  const std::filesystem::path& victim);

// Deletes everything under trash/ and returns the bytes freed. Blocking: run it off the loop
// thread. Safe to run concurrently with MoveToTrash and on several agents of one volume.
absl::StatusOr<uint64_t> EmptyTrash(const CacheLayout& layout);

}  // namespace modelcache
