#include "agent/pod_leases/pod_lease_table.h"

#include <gtest/gtest.h>

#include "tests/testing/fake_clock.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;

TEST(PodLeaseTable, HoldLeasesTheModelUntilTheDefaultTtlEnds) {
  FakeClock clock;
  PodLeaseTable leases(clock, 10min);
  EXPECT_FALSE(leases.is_leased("llama", "1"));
  Clock::TimePoint expires = leases.Hold("llama", "1", "pod-a");
  EXPECT_EQ(expires, clock.Now() + 10min);
  EXPECT_TRUE(leases.is_leased("llama", "1"));
  EXPECT_FALSE(leases.is_leased("llama", "2"));  // another version is not covered
  EXPECT_FALSE(leases.is_leased("llam", "1"));
  clock.Advance(10min - 1s);
  EXPECT_TRUE(leases.is_leased("llama", "1"));
  clock.Advance(1s);
  EXPECT_FALSE(leases.is_leased("llama", "1"));
  EXPECT_EQ(leases.LiveCount(), 0u);
}

TEST(PodLeaseTable, HoldersAreListedPerModelSortedAndOnlyWhileLive) {
  FakeClock clock;
  PodLeaseTable leases(clock, 10s);
  leases.HoldUntilReleased("m", "1", "pod:team-a/b:u2");
  leases.Hold("m", "1", "pod:team-a/a:u1");
  leases.Hold("m", "2", "job");
  using Holders = std::map<PodLeaseTable::ModelKey, std::vector<std::string>>;
  EXPECT_EQ(leases.HoldersByModel(), (Holders{{{"m", "1"}, {"pod:team-a/a:u1", "pod:team-a/b:u2"}}, {{"m", "2"}, {"job"}}}));
  clock.Advance(10s);
  EXPECT_EQ(leases.HoldersByModel(), (Holders{{{"m", "1"}, {"pod:team-a/b:u2"}}}));
}

TEST(PodLeaseTable, RenewalExtendsFromNowAndAnExplicitTtlWins) {
  FakeClock clock;
  PodLeaseTable leases(clock, 60s);
  leases.Hold("m", "v", "pod");
  clock.Advance(50s);
  EXPECT_EQ(leases.Hold("m", "v", "pod"), clock.Now() + 60s);
  clock.Advance(50s);  // 100s after the first hold: alive only thanks to the renewal
  EXPECT_TRUE(leases.is_leased("m", "v"));
  EXPECT_EQ(leases.Hold("m", "v", "pod", 5s), clock.Now() + 5s);
  clock.Advance(5s);
  EXPECT_FALSE(leases.is_leased("m", "v"));
}

TEST(PodLeaseTable, CountsOneLeasePerHolder) {
  FakeClock clock;
  PodLeaseTable leases(clock, 60s);
  leases.Hold("m", "v", "pod-a");
  leases.Hold("m", "v", "pod-a");
  leases.Hold("m", "v", "pod-b", 10s);
  leases.Hold("m", "w", "pod-a");
  leases.Hold("n", "v", "pod-c");
  EXPECT_EQ(leases.LiveLeases("m", "v"), 2u);
  EXPECT_EQ(leases.LiveCount(), 4u);
  std::map<PodLeaseTable::ModelKey, uint32_t> by_model = leases.LiveByModel();
  EXPECT_EQ(by_model.size(), 3u);
  EXPECT_EQ((by_model[{"m", "v"}]), 2u);
  EXPECT_EQ((by_model[{"m", "w"}]), 1u);
  clock.Advance(10s);  // pod-b's short lease ends
  EXPECT_EQ(leases.LiveLeases("m", "v"), 1u);
  EXPECT_EQ(leases.LiveCount(), 3u);
}

TEST(PodLeaseTable, ReleaseEndsOnlyThatHoldersLease) {
  FakeClock clock;
  PodLeaseTable leases(clock, 60s);
  leases.Hold("m", "v", "pod-a");
  leases.Hold("m", "v", "pod-b");
  EXPECT_TRUE(leases.Release("m", "v", "pod-a"));
  EXPECT_FALSE(leases.Release("m", "v", "pod-a"));  // already gone
  EXPECT_TRUE(leases.is_leased("m", "v"));
  EXPECT_TRUE(leases.Release("m", "v", "pod-b"));
  EXPECT_FALSE(leases.is_leased("m", "v"));
}

TEST(PodLeaseTable, ReleasingAnExpiredLeaseReportsNone) {
  FakeClock clock;
  PodLeaseTable leases(clock, 60s);
  leases.Hold("m", "v", "pod");
  clock.Advance(61s);
  EXPECT_FALSE(leases.Release("m", "v", "pod"));
}

TEST(PodLeaseTable, HoldUntilReleasedNeverExpires) {
  FakeClock clock;
  PodLeaseTable leases(clock, 60s);
  leases.HoldUntilReleased("m", "v", "pod:ns/a:uid-1");
  clock.Advance(24h * 365);
  EXPECT_TRUE(leases.is_leased("m", "v"));
  EXPECT_TRUE(leases.Release("m", "v", "pod:ns/a:uid-1"));
  EXPECT_FALSE(leases.is_leased("m", "v"));
}

TEST(PodLeaseTable, LastLeasedIsTheLatestHoldWhileLiveThenWhenTheLastLeaseEnded) {
  FakeClock clock;
  PodLeaseTable leases(clock, 60s);
  EXPECT_TRUE(leases.LastLeasedByModel().empty());  // never leased: no claim on last access
  const Clock::TimePoint taken = clock.Now();
  leases.HoldUntilReleased("m", "v", "pod-a");
  leases.Hold("x", "1", "pod-b", 10s);
  clock.Advance(1h);
  // Stable while live (the usage report does not change at every heartbeat).
  EXPECT_EQ(leases.LastLeasedByModel().at({"m", "v"}), taken);
  const Clock::TimePoint released = clock.Now();
  leases.Release("m", "v", "pod-a");
  clock.Advance(1h);
  std::map<PodLeaseTable::ModelKey, Clock::TimePoint> last = leases.LastLeasedByModel();
  EXPECT_EQ(last.at({"m", "v"}), released);
  // An expired lease counts as used until it expired.
  EXPECT_EQ(last.at({"x", "1"}), taken + 10s);
}

}  // namespace
}  // namespace modelcache
