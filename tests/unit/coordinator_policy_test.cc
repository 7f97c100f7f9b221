#include "coordinator/policy/purge_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace modelcache {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

const Clock::TimePoint kNow = FromUnixMillis(1'800'000'000'000);

CachedCopy Copy(std::string volume, std::string name, std::string version, uint64_t bytes,
                std::chrono::system_clock::duration age) {
  CachedCopy copy;
  copy.volume_id = std::move(volume);
  copy.name = std::move(name);
  copy.version = std::move(version);
  copy.size_bytes = bytes;
  copy.last_access = kNow - age;
  return copy;
}

PurgePolicy UnusedAfter(std::chrono::system_clock::duration after) {
  PurgePolicy policy;
  policy.purge_unused_after = std::chrono::duration_cast<seconds>(after);
  return policy;
}

std::vector<std::string> Names(const std::vector<PurgeDecision>& decisions) {
  std::vector<std::string> names;
  for (const PurgeDecision& decision : decisions) {
    names.push_back(decision.volume_id + "/" + decision.name + "@" + decision.version);
  }
  return names;
}

TEST(PurgePlan, UnusedCopyOlderThanLimitIsPurgedWithReason) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "old", "1", 100, hours(25)), Copy("v1", "new", "1", 100, hours(1))};
  PurgePlan plan = Plan(snapshot, UnusedAfter(hours(24)), kNow);
  ASSERT_EQ(Names(plan.decisions), std::vector<std::string>{"v1/old@1"});
  EXPECT_EQ(plan.decisions[0].reason, PurgeReason::kUnused);
  EXPECT_EQ(plan.decisions[0].size_bytes, 100u);
  EXPECT_NE(plan.decisions[0].explanation.find("older than 1d"), std::string::npos)
      << plan.decisions[0].explanation;
}

TEST(PurgePlan, CopiesOnADrainingVolumeAreNeverChosen) {
  // vol-old is only an agent's extra volume: no agent would run a purge command for it.
  Snapshot snapshot;
  CachedCopy old_unused = Copy("vol-old", "a", "1", 600, hours(48));
  old_unused.draining = true;
  CachedCopy old_deleted = Copy("vol-old", "gone", "1", 600, hours(1));
  old_deleted.draining = true;
  snapshot.copies = {old_unused, old_deleted, Copy("vol-new", "gone", "1", 10, hours(1))};
  snapshot.models["gone"].deleted = true;
  PurgePolicy policy = UnusedAfter(hours(24));
  policy.default_quota_bytes = 1000;  // vol-old holds 1200: above any watermark
  PurgePlan plan = Plan(snapshot, policy, kNow);
  EXPECT_EQ(Names(plan.decisions), std::vector<std::string>{"vol-new/gone@1"});
  ASSERT_EQ(Names(plan.draining), std::vector<std::string>{"vol-old/gone@1"});
  EXPECT_NE(plan.draining[0].explanation.find("modelcachectl cleanup"), std::string::npos)
      << plan.draining[0].explanation;
  EXPECT_TRUE(plan.held_by_lease.empty());
}

TEST(PurgePlan, UnusedExactlyAtLimitIsKept) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, hours(24))};
  EXPECT_TRUE(Plan(snapshot, UnusedAfter(hours(24)), kNow).decisions.empty());
}

TEST(PurgePlan, ZeroUnusedLimitDisablesTheRule) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, hours(10000))};
  EXPECT_TRUE(Plan(snapshot, UnusedAfter(seconds(0)), kNow).decisions.empty());
}

TEST(PurgePlan, AgentReportedLeaseKeepsUnusedCopy) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, hours(48))};
  snapshot.copies[0].agent_leases = 1;
  EXPECT_TRUE(Plan(snapshot, UnusedAfter(hours(24)), kNow).decisions.empty());
}

// The dry run lists an unused copy a pod keeps, naming the pod.
TEST(PurgePlan, UnusedCopyALeaseKeepsIsListedWithItsHolders) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, hours(48))};
  snapshot.copies[0].agent_leases = 1;
  snapshot.copies[0].lease_holders = {"pod team-a/server-1"};
  PurgePlan plan = Plan(snapshot, UnusedAfter(hours(24)), kNow);
  EXPECT_TRUE(plan.decisions.empty());
  ASSERT_EQ(Names(plan.held_by_lease), std::vector<std::string>{"v1/m@1"});
  EXPECT_EQ(plan.held_by_lease[0].explanation, "last access 2d ago, older than 1d; in use: live lease (pod team-a/server-1)");
}

TEST(PurgePlan, InUseExplanationNamesAgentAndCoordinatorHoldersAndCountsTheRest) {
  Snapshot snapshot;
  CachedCopy copy = Copy("v1", "m", "1", 100, hours(1));
  copy.agent_leases = 1;
  EXPECT_EQ(InUseExplanation(copy, snapshot, kNow), "in use: live lease") << "no holder known";
  copy.lease_holders = {"pod a/x", "pod a/y"};
  snapshot.in_use_leases = {InUseLease{"m", "1", "", "job-7", kNow + seconds(30)},
                            InUseLease{"m", "1", "", "expired", kNow - seconds(1)},
                            InUseLease{"m", "1", "other-volume", "elsewhere", kNow + seconds(30)}};
  EXPECT_EQ(InUseExplanation(copy, snapshot, kNow), "in use: live leases (job-7, pod a/x, pod a/y)");
  copy.lease_holders.insert("pod a/z");
  EXPECT_EQ(InUseExplanation(copy, snapshot, kNow), "in use: live leases (job-7, pod a/x, pod a/y and 1 more)");
  ManualPurge manual = PlanManualPurge(Snapshot{.copies = {copy}}, "m", "1", kNow);
  ASSERT_EQ(manual.skipped.size(), 1u);
  EXPECT_EQ(manual.skipped[0].explanation, "in use: live leases (pod a/x, pod a/y, pod a/z)");
}

TEST(PurgePlan, CoordinatorLeaseOnSameVolumeKeepsCopyAndExpiredOneDoesNot) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, hours(48)), Copy("v2", "m", "1", 100, hours(48))};
  snapshot.in_use_leases = {InUseLease{"m", "1", "v1", "pod-a", kNow + seconds(30)},
                     InUseLease{"m", "1", "v2", "pod-b", kNow - seconds(1)}};
  PurgePlan plan = Plan(snapshot, UnusedAfter(hours(24)), kNow);
  EXPECT_EQ(Names(plan.decisions), std::vector<std::string>{"v2/m@1"});
}

TEST(PurgePlan, LeaseWithoutVolumeProtectsEveryVolume) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, hours(48)), Copy("v2", "m", "1", 100, hours(48))};
  snapshot.in_use_leases = {InUseLease{"m", "1", "", "pod-a", kNow + seconds(30)}};
  EXPECT_TRUE(Plan(snapshot, UnusedAfter(hours(24)), kNow).decisions.empty());
}

TEST(PurgePlan, LeaseForOtherVersionDoesNotProtect) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, hours(48))};
  snapshot.in_use_leases = {InUseLease{"m", "2", "", "pod-a", kNow + seconds(30)}};
  EXPECT_EQ(Plan(snapshot, UnusedAfter(hours(24)), kNow).decisions.size(), 1u);
}

TEST(PurgePlan, PinnedModelOrVersionIsNotPurgedForBeingUnused) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "a", "1", 100, hours(48)), Copy("v1", "b", "1", 100, hours(48)),
                     Copy("v1", "b", "2", 100, hours(48))};
  snapshot.models["a"].pinned = true;
  snapshot.models["b"].pinned_versions = {"2"};
  EXPECT_EQ(Names(Plan(snapshot, UnusedAfter(hours(24)), kNow).decisions),
            std::vector<std::string>{"v1/b@1"});
}

TEST(PurgePlan, DeletedModelIsPurgedEverywhereEvenWhenRecentAndPinned) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "gone", "1", 100, seconds(1)),
                     Copy("v2", "gone", "2", 100, seconds(1)),
                     Copy("v2", "kept", "1", 100, seconds(1))};
  snapshot.models["gone"].deleted = true;
  snapshot.models["gone"].pinned = true;
  PurgePlan plan = Plan(snapshot, UnusedAfter(hours(24)), kNow);
  EXPECT_EQ(Names(plan.decisions), (std::vector<std::string>{"v1/gone@1", "v2/gone@2"}));
  for (const PurgeDecision& decision : plan.decisions) {
    EXPECT_EQ(decision.reason, PurgeReason::kDeleted);
  }
}

TEST(PurgePlan, DeletedModelWithLiveLeaseWaitsAndIsReportedAsHeld) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "gone", "1", 100, hours(100))};
  snapshot.copies[0].agent_leases = 2;
  snapshot.models["gone"].deleted = true;
  PurgePlan plan = Plan(snapshot, UnusedAfter(hours(24)), kNow);
  EXPECT_TRUE(plan.decisions.empty());
  EXPECT_EQ(Names(plan.held_by_lease), std::vector<std::string>{"v1/gone@1"});
}

TEST(PurgePlan, CopiesThatAreNotReadyAreNeverChosen) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, hours(48))};
  snapshot.copies[0].ready = false;
  snapshot.models["m"].deleted = true;
  EXPECT_TRUE(Plan(snapshot, UnusedAfter(hours(24)), kNow).decisions.empty());
}

TEST(PurgePlan, QuotaEvictsLeastRecentlyUsedUntilUnderLowWatermark) {
  Snapshot snapshot;
  // Quota 1000: high 900, low 800. Used 950 -> must drop to <= 800.
  snapshot.copies = {Copy("v1", "newest", "1", 300, seconds(10)),
                     Copy("v1", "oldest", "1", 100, seconds(300)),
                     Copy("v1", "middle", "1", 250, seconds(200)),
                     Copy("v1", "newer", "1", 300, seconds(100))};
  PurgePolicy policy = UnusedAfter(hours(24));
  policy.default_quota_bytes = 1000;
  PurgePlan plan = Plan(snapshot, policy, kNow);
  EXPECT_EQ(Names(plan.decisions), (std::vector<std::string>{"v1/oldest@1", "v1/middle@1"}));
  for (const PurgeDecision& decision : plan.decisions) {
    EXPECT_EQ(decision.reason, PurgeReason::kQuota);
    EXPECT_NE(decision.explanation.find("least recently used"), std::string::npos);
  }
}

TEST(PurgePlan, QuotaBelowHighWatermarkPurgesNothing) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "a", "1", 450, seconds(10)), Copy("v1", "b", "1", 450, seconds(20))};
  PurgePolicy policy = UnusedAfter(hours(24));
  policy.default_quota_bytes = 1000;
  EXPECT_TRUE(Plan(snapshot, policy, kNow).decisions.empty());
}

TEST(PurgePlan, QuotaSkipsLeasedAndPinnedCopies) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "leased", "1", 400, seconds(500)),
                     Copy("v1", "pinned", "1", 400, seconds(400)),
                     Copy("v1", "free", "1", 150, seconds(10))};
  snapshot.copies[0].agent_leases = 1;
  snapshot.models["pinned"].pinned = true;
  PurgePolicy policy = UnusedAfter(hours(24));
  policy.default_quota_bytes = 1000;
  PurgePlan plan = Plan(snapshot, policy, kNow);
  EXPECT_EQ(Names(plan.decisions), std::vector<std::string>{"v1/free@1"});
}

TEST(PurgePlan, QuotaCountsUnusedPurgesAsAlreadyFreed) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "stale", "1", 500, hours(48)),
                     Copy("v1", "recent", "1", 450, seconds(10))};
  PurgePolicy policy = UnusedAfter(hours(24));
  policy.default_quota_bytes = 1000;
  PurgePlan plan = Plan(snapshot, policy, kNow);
  ASSERT_EQ(Names(plan.decisions), std::vector<std::string>{"v1/stale@1"});
  EXPECT_EQ(plan.decisions[0].reason, PurgeReason::kUnused);
}

TEST(PurgePlan, QuotaIsPerVolumeAndVolumeQuotaOverridesDefault) {
  Snapshot snapshot;
  snapshot.copies = {Copy("small", "a", "1", 300, seconds(20)),
                     Copy("small", "b", "1", 300, seconds(10)),
                     Copy("big", "a", "1", 300, seconds(20)),
                     Copy("big", "b", "1", 300, seconds(10))};
  snapshot.volume_quota["small"] = 500;
  PurgePolicy policy = UnusedAfter(hours(24));
  policy.default_quota_bytes = 10000;
  EXPECT_EQ(Names(Plan(snapshot, policy, kNow).decisions),
            std::vector<std::string>{"small/a@1"});
}

TEST(PurgePlan, NoQuotaMeansNoQuotaRule) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "a", "1", 1ull << 50, seconds(20))};
  EXPECT_TRUE(Plan(snapshot, UnusedAfter(hours(24)), kNow).decisions.empty());
}

TEST(LeaseRule, AgentLeasesAndLiveCoordinatorLeasesForTheCopyHoldIt) {
  Snapshot snapshot;
  CachedCopy copy = Copy("v1", "m", "1", 100, hours(1));
  EXPECT_FALSE(HasLiveLease(copy, snapshot, kNow));
  copy.agent_leases = 1;
  EXPECT_TRUE(HasLiveLease(copy, snapshot, kNow));
  copy.agent_leases = 0;
  snapshot.in_use_leases = {InUseLease{"m", "1", "v2", "pod-a", kNow + seconds(30)},
                     InUseLease{"m", "1", "v1", "pod-b", kNow}};
  EXPECT_FALSE(HasLiveLease(copy, snapshot, kNow)) << "another volume, or expiring now";
  snapshot.in_use_leases.push_back(InUseLease{"m", "1", "", "pod-c", kNow + seconds(1)});
  EXPECT_TRUE(HasLiveLease(copy, snapshot, kNow)) << "a lease on every volume";
}

TEST(ManualPurge, EveryCopyOfTheVersionGoesEvenWhenPinnedOrRecent) {
  Snapshot snapshot;
  snapshot.copies = {Copy("v1", "m", "1", 100, seconds(1)), Copy("v2", "m", "1", 100, seconds(1)),
                     Copy("v1", "m", "2", 100, seconds(1)), Copy("v1", "other", "1", 100, hours(99))};
  snapshot.models["m"].pinned = true;
  ManualPurge manual = PlanManualPurge(snapshot, "m", "1", kNow);
  EXPECT_EQ(Names(manual.purge), (std::vector<std::string>{"v1/m@1", "v2/m@1"}));
  EXPECT_TRUE(manual.skipped.empty());
  EXPECT_EQ(manual.purge[0].explanation, "requested by an admin");
  EXPECT_EQ(Names(PlanManualPurge(snapshot, "m", "", kNow).purge),
            (std::vector<std::string>{"v1/m@1", "v2/m@1", "v1/m@2"}));
}

TEST(ManualPurge, LeasedCopiesAndDrainingVolumesAreSkippedWithTheReason) {
  Snapshot snapshot;
  CachedCopy leased = Copy("v1", "m", "1", 100, seconds(1));
  leased.agent_leases = 2;
  CachedCopy draining = Copy("old", "m", "1", 100, seconds(1));
  draining.draining = true;
  snapshot.copies = {leased, draining, Copy("v2", "m", "1", 100, seconds(1))};
  ManualPurge manual = PlanManualPurge(snapshot, "m", "1", kNow);
  EXPECT_EQ(Names(manual.purge), std::vector<std::string>{"v2/m@1"});
  ASSERT_EQ(Names(manual.skipped), (std::vector<std::string>{"v1/m@1", "old/m@1"}));
  EXPECT_EQ(manual.skipped[0].explanation, "in use: live lease");
  EXPECT_NE(manual.skipped[1].explanation.find("cleanup --volume old"), std::string::npos)
      << manual.skipped[1].explanation;
}

}  // namespace
}  // namespace modelcache
