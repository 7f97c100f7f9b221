#include "coordinator/policy/room_plan.h"

#include <algorithm>

#include "common/duration.h"
#include "common/quantity.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// "m@v1", or the name alone for a request without a version (a dry run's "a fill").
std::string Wanted(const RoomRequest& request) {
  return request.version.empty() ? request.name : request.name + "@" + request.version;
}

}  // namespace

RoomPlan PlanRoom(const Snapshot& snapshot, const RoomRequest& request, Clock::TimePoint now) {
  RoomPlan plan;
  std::vector<const CachedCopy*> candidates;
  for (const CachedCopy& copy : snapshot.copies) {
    if (copy.volume_id != request.volume_id || copy.draining) continue;
    if (!copy.ready || (copy.name == request.name && copy.version == request.version)) {
      plan.busy_bytes += copy.size_bytes;
    } else if (IsPinned(copy, snapshot)) {
      plan.pinned_bytes += copy.size_bytes;
    } else if (HasLiveLease(copy, snapshot, now)) {
      plan.leased_bytes += copy.size_bytes;
    } else {
      candidates.push_back(&copy);
      plan.evictable_bytes += copy.size_bytes;
    }
  }
  if (request.bytes_needed == 0) {
    plan.enough = true;
    return plan;
  }
  std::sort(candidates.begin(), candidates.end(), [](const CachedCopy* a, const CachedCopy* b) {
    return std::tie(a->last_access, a->name, a->version) <
           std::tie(b->last_access, b->name, b->version);
  });
  uint64_t freed = 0;
  for (const CachedCopy* copy : candidates) {
    if (freed >= request.bytes_needed) break;
    freed += copy->size_bytes;
    auto age = std::chrono::duration_cast<std::chrono::seconds>(now - copy->last_access);
    plan.decisions.push_back(PurgeDecision{
        copy->volume_id, copy->name, copy->version, copy->size_bytes, PurgeReason::kRoom,
        fmt::format("for {} ({} short), least recently used (last access {} ago)",
                    Wanted(request), FormatBytes(request.bytes_needed),
                    FormatDuration(std::max(age, std::chrono::seconds(0))))});
  }
  plan.enough = freed >= request.bytes_needed;
  if (!plan.enough) plan.decisions.clear();
  return plan;
}

std::string DescribeRoomShortfall(const RoomRequest& request, const RoomPlan& plan) {
  return fmt::format(
      "volume {}: {} needs {} more, only {} could be purged (kept: {} pinned, {} leased on some "
      "node, {} being filled or purged)",
      request.volume_id, Wanted(request), FormatBytes(request.bytes_needed),
      FormatBytes(plan.evictable_bytes), FormatBytes(plan.pinned_bytes),
      FormatBytes(plan.leased_bytes), FormatBytes(plan.busy_bytes));
}

}  // namespace modelcache
