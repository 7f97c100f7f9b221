#include "coordinator/policy/room_plan.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

using std::chrono::hours;

const Clock::TimePoint kNow = FromUnixMillis(1'800'000'000'000);

CachedCopy Copy(std::string volume, std::string name, uint64_t bytes,
                std::chrono::system_clock::duration age) {
  CachedCopy copy;
  copy.volume_id = std::move(volume);
  copy.name = std::move(name);
  copy.version = "1";
  copy.size_bytes = bytes;
  copy.last_access = kNow - age;
  return copy;
}

RoomRequest Need(uint64_t bytes) { return RoomRequest{"vol", "new", "1", bytes}; }

std::vector<std::string> Names(const RoomPlan& plan) {
  std::vector<std::string> names;
  for (const PurgeDecision& decision : plan.decisions) names.push_back(decision.name);
  return names;
}

TEST(RoomPlan, EvictsJustEnoughOldestFirst) {
  Snapshot snapshot;
  snapshot.copies = {Copy("vol", "newest", 100, hours(1)), Copy("vol", "oldest", 100, hours(30)),
                     Copy("vol", "middle", 100, hours(10)), Copy("vol", "older", 100, hours(20))};
  RoomPlan plan = PlanRoom(snapshot, Need(150), kNow);
  ASSERT_TRUE(plan.enough);
  EXPECT_EQ(Names(plan), (std::vector<std::string>{"oldest", "older"}));
  EXPECT_EQ(plan.decisions[0].reason, PurgeReason::kRoom);
  EXPECT_NE(plan.decisions[0].explanation.find("for new@1"), std::string::npos)
      << plan.decisions[0].explanation;
  EXPECT_EQ(plan.evictable_bytes, 400u);
}

TEST(RoomPlan, ExactFitTakesNoMore) {
  Snapshot snapshot;
  snapshot.copies = {Copy("vol", "a", 100, hours(3)), Copy("vol", "b", 100, hours(2))};
  EXPECT_EQ(Names(PlanRoom(snapshot, Need(100), kNow)), std::vector<std::string>{"a"});
  RoomPlan none = PlanRoom(snapshot, Need(0), kNow);
  EXPECT_TRUE(none.enough);
  EXPECT_TRUE(none.decisions.empty());
}

TEST(RoomPlan, KeepsPinnedLeasedBusyAndOtherVolumes) {
  Snapshot snapshot;
  CachedCopy leased_here = Copy("vol", "leased-by-agent", 100, hours(50));
  leased_here.agent_leases = 1;  // an agent on some node of the volume reported it
  CachedCopy filling = Copy("vol", "filling", 100, hours(49));
  filling.ready = false;
  CachedCopy draining = Copy("vol", "draining", 100, hours(48));
  draining.draining = true;
  snapshot.copies = {leased_here,
                     filling,
                     draining,
                     Copy("vol", "pinned", 100, hours(47)),
                     Copy("vol", "pinned-version", 100, hours(46)),
                     Copy("vol", "leased-at-coordinator", 100, hours(45)),
                     Copy("vol", "new", 100, hours(44)),  // the fill's own name and version
                     Copy("other", "elsewhere", 100, hours(43)),
                     Copy("vol", "free", 100, hours(1))};
  snapshot.models["pinned"].pinned = true;
  snapshot.models["pinned-version"].pinned_versions = {"1"};
  snapshot.in_use_leases.push_back(
      InUseLease{"leased-at-coordinator", "1", "", "pod", kNow + std::chrono::minutes(5)});
  RoomPlan plan = PlanRoom(snapshot, Need(50), kNow);
  ASSERT_TRUE(plan.enough);
  EXPECT_EQ(Names(plan), std::vector<std::string>{"free"});
  EXPECT_EQ(plan.pinned_bytes, 200u);
  EXPECT_EQ(plan.leased_bytes, 200u);
  EXPECT_EQ(plan.busy_bytes, 200u);
}

TEST(RoomPlan, ExpiredCoordinatorLeaseDoesNotProtect) {
  Snapshot snapshot;
  snapshot.copies = {Copy("vol", "a", 100, hours(3))};
  snapshot.in_use_leases.push_back(InUseLease{"a", "1", "vol", "pod", kNow - std::chrono::seconds(1)});
  EXPECT_EQ(Names(PlanRoom(snapshot, Need(100), kNow)), std::vector<std::string>{"a"});
}

TEST(RoomPlan, NotEnoughEvictablePurgesNothingAndSaysWhatIsKept) {
  Snapshot snapshot;
  CachedCopy leased = Copy("vol", "leased", 300, hours(9));
  leased.agent_leases = 2;
  snapshot.copies = {Copy("vol", "a", 100, hours(3)), leased, Copy("vol", "pinned", 200, hours(8))};
  snapshot.models["pinned"].pinned = true;
  const RoomRequest request = Need(150);
  RoomPlan plan = PlanRoom(snapshot, request, kNow);
  EXPECT_FALSE(plan.enough);
  EXPECT_TRUE(plan.decisions.empty());
  EXPECT_EQ(plan.evictable_bytes, 100u);
  const std::string why = DescribeRoomShortfall(request, plan);
  EXPECT_NE(why.find("volume vol"), std::string::npos) << why;
  EXPECT_NE(why.find("new@1"), std::string::npos) << why;
  EXPECT_NE(why.find("pinned"), std::string::npos) << why;
  EXPECT_NE(why.find("leased"), std::string::npos) << why;
}

}  // namespace
}  // namespace modelcache
