#pragma once
// Room on demand as a pure function: a fill on one volume does not fit and needs N more
// bytes; which copies on that volume to purge now, least recently used first, just enough.
// No I/O, no clock.
#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/policy/purge_plan.h"

namespace modelcache {

struct RoomRequest {
  std::string volume_id;
  std::string name;     // the model being filled (never chosen, whatever its state)
  std::string version;  // empty: a dry run's hypothetical fill, named by `name` alone
  uint64_t bytes_needed = 0;  // more free bytes the fill needs than the volume has
};

struct RoomPlan {
  // Reason kRoom, oldest last access first; their sizes add up to at least bytes_needed
  // when `enough`, else empty (a purge that cannot make room would only lose models).
  std::vector<PurgeDecision> decisions;
  bool enough = false;
  uint64_t evictable_bytes = 0;  // every copy the plan could take
  // What it may not take, for the error when it is not enough (bytes of such copies).
  uint64_t pinned_bytes = 0;
  uint64_t leased_bytes = 0;
  uint64_t busy_bytes = 0;  // not READY (being filled or purged), or the fill's own model
};

// Candidates: the volume's copies that are READY, not draining, not pinned, with no live lease
// on any node (HasLiveLease), and not the requested model. Taken by last access, oldest first
// (ties: by name and version), until their sizes reach bytes_needed. bytes_needed 0: nothing
// to do (enough, no decision).
RoomPlan PlanRoom(const Snapshot& snapshot, const RoomRequest& request, Clock::TimePoint now);

// "volume V: m@v1 needs 25 MiB more, only 10 MiB could be purged (kept: ...)": why a RoomPlan
// that is not `enough` fails, naming what it may not take.
std::string DescribeRoomShortfall(const RoomRequest& request, const RoomPlan& plan);

}  // namespace modelcache
