#pragma once
// Purge decisions as pure functions: a snapshot of what is cached where, the policy, and the
// time in; the list of copies to purge, each with its reason, out. No I/O, no clock.
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace modelcache {

// One model version on one volume, aggregated over the agents that reported it.
struct CachedCopy {
  std::string volume_id;
  std::string name;
  std::string version;
  uint64_t size_bytes = 0;
  Clock::TimePoint last_access;
  uint32_t agent_leases = 0;  // live pod leases the agents reported
  // Who holds them, as the agents reported ("pod team-a/server-1"); may name fewer than
  // agent_leases (each agent reports a few).
  std::set<std::string> lease_holders;
  bool ready = true;          // false while filling or purging: never chosen
  // No agent serves the volume; it is only mounted as some agent's extra volume (the old
  // volume after a storage switch). Purge commands go to an agent serving the volume, so none
  // would run: no rule chooses such a copy. `modelcachectl cleanup` on the node empties it.
  bool draining = false;
};

struct RegistryModel {
  bool deleted = false;
  bool pinned = false;
  std::set<std::string> pinned_versions;
};

// An in-use lease held at the coordinator (its AcquireLease RPC); volume_id empty = every volume.
struct InUseLease {
  std::string name;
  std::string version;
  std::string volume_id;
  std::string holder;
  Clock::TimePoint expires;
};

struct Snapshot {
  std::vector<CachedCopy> copies;
  std::map<std::string, RegistryModel> models;    // by name; absent = not deleted, not pinned
  std::vector<InUseLease> in_use_leases;
  std::map<std::string, uint64_t> volume_quota;   // per volume; absent or 0: policy default
};

struct PurgePolicy {
  // 0 disables the unused rule.
  std::chrono::seconds purge_unused_after{7 * 24 * 3600};
  double high_watermark = 0.9;
  double low_watermark = 0.8;
  uint64_t default_quota_bytes = 0;  // 0: no quota rule for volumes without their own
};

// kRoom: room on demand for a fill that does not fit (coordinator/policy/room_plan.h).
enum class PurgeReason { kDeleted, kUnused, kQuota, kRoom };
const char* PurgeReasonName(PurgeReason reason);  // "deleted", "unused", "quota", "room"

// Whether the registry pins the copy's model or version.
bool IsPinned(const CachedCopy& copy, const Snapshot& snapshot);

struct PurgeDecision {
  std::string volume_id;
  std::string name;
  std::string version;
  uint64_t size_bytes = 0;
  PurgeReason reason = PurgeReason::kUnused;
  std::string explanation;  // for people: "last access 3d ago, older than 1d"
};

struct PurgePlan {
  std::vector<PurgeDecision> decisions;  // at most one per copy
  // Copies a rule wanted but a lease kept: deleted models waiting for their leases, and copies
  // unused for longer than purge_unused_after that a pod still leases. The explanation names
  // the holders ("...; in use: live lease (pod team-a/server-1)").
  std::vector<PurgeDecision> held_by_lease;
  // Copies of deleted models on draining volumes: left to `modelcachectl cleanup`.
  std::vector<PurgeDecision> draining;
};

// Rules, in this order, each copy decided at most once:
//  1. deleted from the registry: every ready copy with no live lease (pins do not protect);
//  2. unused: last access older than purge_unused_after, no live lease, not pinned;
//  3. quota: while a volume's used bytes (all copies, minus those already decided) exceed
//     high_watermark * quota, its least recently used ready, unleased, unpinned copies go
//     until used <= low_watermark * quota.
// Draining copies are never chosen (deleted ones are listed in `draining`) and do not count
// towards a quota.
// A live lease is an agent-reported one or a coordinator lease expiring after `now` for the
// same name and version on the copy's volume (or on every volume).
PurgePlan Plan(const Snapshot& snapshot, const PurgePolicy& policy, Clock::TimePoint now);

// The lease rule every purge obeys: true while the agents report a live lease on the copy,
// or a coordinator in-use lease for its name and version, on its volume or on every volume,
// expires after `now`.
bool HasLiveLease(const CachedCopy& copy, const Snapshot& snapshot, Clock::TimePoint now);

// "in use: live lease (pod team-a/server-1)": why a lease keeps the copy, naming the holders
// the agents reported and those of the coordinator's live leases (three at most, then "and N
// more"); "in use: live lease" when no holder is known.
std::string InUseExplanation(const CachedCopy& copy, const Snapshot& snapshot, Clock::TimePoint now);

// The models with a live lease on `volume_id`, and how many: the pod leases every agent of
// the volume reported, plus the coordinator's in-use leases for that volume or for every
// volume that expire after `now`.
std::map<std::pair<std::string, std::string>, uint32_t> LiveLeasesOn(const Snapshot& snapshot,
                                                                     std::string_view volume_id,
                                                                     Clock::TimePoint now);

// `modelcachectl purge NAME[@VERSION]`: every copy of the model (of that version, when given)
// is purged, except one a lease holds (InUseExplanation) and one on a volume no agent
// serves (left to `modelcachectl cleanup`), which are skipped with the reason. Pins and the
// rules above do not apply: an admin asked. Decisions carry reason kUnused and the
// explanation "requested by an admin".
struct ManualPurge {
  std::vector<PurgeDecision> purge;
  std::vector<PurgeDecision> skipped;
};
ManualPurge PlanManualPurge(const Snapshot& snapshot, std::string_view name,
                            std::string_view version, Clock::TimePoint now);

}  // namespace modelcache
