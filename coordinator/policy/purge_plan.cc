#include "coordinator/policy/purge_plan.h"

#include <algorithm>
#include <tuple>

#include "common/duration.h"
#include "common/quantity.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

using CopyKey = std::tuple<std::string, std::string, std::string>;  // volume, name, version

CopyKey KeyOf(const CachedCopy& copy) { return {copy.volume_id, copy.name, copy.version}; }

const RegistryModel* FindModel(const Snapshot& snapshot, const std::string& name) {
  auto found = snapshot.models.find(name);
  return found == snapshot.models.end() ? nullptr : &found->second;
}

std::string Age(Clock::TimePoint then, Clock::TimePoint now) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now - then);
  if (seconds.count() < 0) seconds = std::chrono::seconds(0);
  return FormatDuration(seconds);
}

PurgeDecision DecisionFor(const CachedCopy& copy, PurgeReason reason, std::string explanation) {
  return PurgeDecision{copy.volume_id, copy.name,  copy.version,
                       copy.size_bytes, reason,     std::move(explanation)};
}


// Rule 1: every ready copy of a model deleted from the registry, unless a lease holds it
// (then it waits, and no other rule takes it either) or no agent serves its volume.
void PlanDeleted(const Snapshot& snapshot, Clock::TimePoint now, PurgePlan& plan,
                 std::set<CopyKey>& decided) {
  for (const CachedCopy& copy : snapshot.copies) {
    const RegistryModel* model = FindModel(snapshot, copy.name);
    if (model == nullptr || !model->deleted || !copy.ready) continue;
    PurgeDecision decision = DecisionFor(
        copy, PurgeReason::kDeleted, fmt::format("model {} deleted from the registry", copy.name));
    decided.insert(KeyOf(copy));
    if (copy.draining) {
      decision.explanation += fmt::format(
          ", on volume {} that no agent serves (an extra volume): empty it with modelcachectl "
          "cleanup",
          copy.volume_id);
      plan.draining.push_back(std::move(decision));
    } else if (HasLiveLease(copy, snapshot, now)) {
      decision.explanation += ", waiting for its lease; " + InUseExplanation(copy, snapshot, now);
      plan.held_by_lease.push_back(std::move(decision));
    } else {
      plan.decisions.push_back(std::move(decision));
    }
  }
}

// Rule 2: copies last accessed longer than purge_unused_after ago, unpinned and unleased.
void PlanUnused(const Snapshot& snapshot, const PurgePolicy& policy, Clock::TimePoint now,
                PurgePlan& plan, std::set<CopyKey>& decided) {
  if (policy.purge_unused_after.count() == 0) return;
  for (const CachedCopy& copy : snapshot.copies) {
    if (!copy.ready || copy.draining || decided.count(KeyOf(copy)) > 0) continue;
    if (now - copy.last_access <= policy.purge_unused_after) continue;
    if (IsPinned(copy, snapshot)) continue;
    decided.insert(KeyOf(copy));
    PurgeDecision decision = DecisionFor(
        copy, PurgeReason::kUnused,
        fmt::format("last access {} ago, older than {}", Age(copy.last_access, now),
                    FormatDuration(policy.purge_unused_after)));
    if (HasLiveLease(copy, snapshot, now)) {
      // Listed, so that a dry run says which pod keeps it.
      decision.explanation += "; " + InUseExplanation(copy, snapshot, now);
      plan.held_by_lease.push_back(std::move(decision));
    } else {
      plan.decisions.push_back(std::move(decision));
    }
  }
}

uint64_t QuotaOf(const std::string& volume_id, const Snapshot& snapshot,
                 const PurgePolicy& policy) {
  auto own = snapshot.volume_quota.find(volume_id);
  if (own != snapshot.volume_quota.end() && own->second > 0) return own->second;
  return policy.default_quota_bytes;
}

// What a volume's copies take once the decisions so far are carried out: a copy held by a
// lease still counts.
uint64_t UsedAfterDecisions(const std::vector<const CachedCopy*>& copies, const PurgePlan& plan,
                            const std::set<CopyKey>& decided) {
  uint64_t used = 0;
  for (const CachedCopy* copy : copies) {
    const bool held = std::any_of(
        plan.held_by_lease.begin(), plan.held_by_lease.end(), [&](const PurgeDecision& decision) {
          return decision.volume_id == copy->volume_id && decision.name == copy->name &&
                 decision.version == copy->version;
        });
    if (decided.count(KeyOf(*copy)) == 0 || held) used += copy->size_bytes;
  }
  return used;
}

// Rule 3, on one volume: above high_watermark of its quota, its least recently used ready,
// unleased, unpinned copies go until it is at or below low_watermark.
void PlanQuota(const std::string& volume_id, const std::vector<const CachedCopy*>& copies,
               const Snapshot& snapshot, const PurgePolicy& policy, Clock::TimePoint now,
               PurgePlan& plan, std::set<CopyKey>& decided) {
  const uint64_t quota = QuotaOf(volume_id, snapshot, policy);
  if (quota == 0) return;
  uint64_t used = UsedAfterDecisions(copies, plan, decided);
  const auto high = static_cast<uint64_t>(policy.high_watermark * static_cast<double>(quota));
  const auto low = static_cast<uint64_t>(policy.low_watermark * static_cast<double>(quota));
  if (used <= high) return;
  std::vector<const CachedCopy*> candidates;
  for (const CachedCopy* copy : copies) {
    if (!copy->ready || decided.count(KeyOf(*copy)) > 0) continue;
    if (IsPinned(*copy, snapshot) || HasLiveLease(*copy, snapshot, now)) continue;
    candidates.push_back(copy);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const CachedCopy* a, const CachedCopy* b) {
                     return a->last_access < b->last_access;
                   });
  const uint64_t used_before = used;
  for (const CachedCopy* copy : candidates) {
    if (used <= low) break;
    decided.insert(KeyOf(*copy));
    used -= std::min(used, copy->size_bytes);
    plan.decisions.push_back(DecisionFor(
        *copy, PurgeReason::kQuota,
        fmt::format("volume {} uses {} of {} (above {:.0f}%), least recently used (last "
                    "access {} ago)",
                    volume_id, FormatBytes(used_before), FormatBytes(quota),
                    policy.high_watermark * 100, Age(copy->last_access, now))));
  }
}

}  // namespace

bool HasLiveLease(const CachedCopy& copy, const Snapshot& snapshot, Clock::TimePoint now) {
  if (copy.agent_leases > 0) return true;
  for (const InUseLease& lease : snapshot.in_use_leases) {
    if (lease.name == copy.name && lease.version == copy.version && lease.expires > now &&
        (lease.volume_id.empty() || lease.volume_id == copy.volume_id)) {
      return true;
    }
  }
  return false;
}

std::string InUseExplanation(const CachedCopy& copy, const Snapshot& snapshot, Clock::TimePoint now) {
  constexpr size_t kNamed = 3;
  std::set<std::string> holders = copy.lease_holders;
  for (const InUseLease& lease : snapshot.in_use_leases) {
    if (lease.name == copy.name && lease.version == copy.version && lease.expires > now &&
        (lease.volume_id.empty() || lease.volume_id == copy.volume_id) && !lease.holder.empty()) {
      holders.insert(lease.holder);
    }
  }
  if (holders.empty()) return "in use: live lease";
  std::string named;
  size_t count = 0;
  for (const std::string& holder : holders) {
    if (count++ == kNamed) break;
    named += (named.empty() ? "" : ", ") + holder;
  }
  if (holders.size() > kNamed) named += fmt::format(" and {} more", holders.size() - kNamed);
  return fmt::format("in use: live lease{} ({})", holders.size() > 1 ? "s" : "", named);
}

bool IsPinned(const CachedCopy& copy, const Snapshot& snapshot) {
  const RegistryModel* model = FindModel(snapshot, copy.name);
  return model != nullptr && (model->pinned || model->pinned_versions.count(copy.version) > 0);
}

const char* PurgeReasonName(PurgeReason reason) {
  switch (reason) {
    case PurgeReason::kDeleted: return "deleted";
    case PurgeReason::kUnused: return "unused";
    case PurgeReason::kQuota: return "quota";
    case PurgeReason::kRoom: return "room";
  }
  return "unknown";
}

std::map<std::pair<std::string, std::string>, uint32_t> LiveLeasesOn(const Snapshot& snapshot,
                                                                     std::string_view volume_id,
                                                                     Clock::TimePoint now) {
  std::map<std::pair<std::string, std::string>, uint32_t> leases;
  for (const CachedCopy& copy : snapshot.copies) {
    if (copy.volume_id == volume_id && copy.agent_leases > 0) {
      leases[{copy.name, copy.version}] += copy.agent_leases;
    }
  }
  for (const InUseLease& lease : snapshot.in_use_leases) {
    if (lease.expires > now && (lease.volume_id.empty() || lease.volume_id == volume_id)) {
      ++leases[{lease.name, lease.version}];
    }
  }
  return leases;
}

PurgePlan Plan(const Snapshot& snapshot, const PurgePolicy& policy, Clock::TimePoint now) {
  PurgePlan plan;
  std::set<CopyKey> decided;
  PlanDeleted(snapshot, now, plan, decided);
  PlanUnused(snapshot, policy, now, plan, decided);
  std::map<std::string, std::vector<const CachedCopy*>> by_volume;
  for (const CachedCopy& copy : snapshot.copies) {
    if (!copy.draining) by_volume[copy.volume_id].push_back(&copy);
  }
  for (const auto& [volume_id, copies] : by_volume) {
    PlanQuota(volume_id, copies, snapshot, policy, now, plan, decided);
  }
  return plan;
}

ManualPurge PlanManualPurge(const Snapshot& snapshot, std::string_view name,
                            std::string_view version, Clock::TimePoint now) {
  ManualPurge manual;
  for (const CachedCopy& copy : snapshot.copies) {
    if (copy.name != name) continue;
    if (!version.empty() && copy.version != version) continue;
    PurgeDecision decision =
        DecisionFor(copy, PurgeReason::kUnused, "requested by an admin");
    if (HasLiveLease(copy, snapshot, now)) {
      decision.explanation = InUseExplanation(copy, snapshot, now);
      manual.skipped.push_back(std::move(decision));
    } else if (copy.draining) {
      // No agent serves the volume, so no agent would run the command.
      decision.explanation = fmt::format(
          "volume {} is only mounted as an extra volume: empty it with modelcachectl cleanup "
          "--volume {}",
          copy.volume_id, copy.volume_id);
      manual.skipped.push_back(std::move(decision));
    } else {
      manual.purge.push_back(std::move(decision));
    }
  }
  return manual;
}

}  // namespace modelcache
