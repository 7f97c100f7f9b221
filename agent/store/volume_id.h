#pragma once
// The cache volume's identity: agents that read the same id share one cache (NFS), and the
// coordinator groups them by it; a hostPath cache gets an id of its own on each node.
// Stored at CacheLayout::VolumeIdPath() as key=value lines:
//   id=<32 hex digits>  created_unix_ms=<ms>  creator_node=<node name>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/store/layout.h"
#include "common/clock.h"

namespace modelcache {

struct VolumeIdRecord {
  std::string id;  // 128 random bits, lowercase hex
  Clock::TimePoint created;
  std::string creator_node;
};

// The recorded id. NOT_FOUND when the volume has none yet; DATA_LOSS naming the path when the
// file is unreadable as a record (bad id, missing key, not key=value).
absl::StatusOr<VolumeIdRecord> ReadVolumeId(const CacheLayout& layout);

// Returns the volume's record, creating it first if the volume has none (and the root folder
// if missing). Race-free across threads, agents and nodes: exactly one creator wins and every
// caller returns the winner's record. INVALID_ARGUMENT for an empty node name or one with
// control characters; DATA_LOSS as ReadVolumeId (a corrupt id is never replaced silently).
absl::StatusOr<VolumeIdRecord> EnsureVolumeIdRecord(const CacheLayout& layout,
                                                    std::string_view node_name, const Clock& clock);

// EnsureVolumeIdRecord with the system clock, returning the id only.
absl::StatusOr<std::string> EnsureVolumeId(const CacheLayout& layout, std::string_view node_name);

}  // namespace modelcache
