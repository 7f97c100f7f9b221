#include "agent/single_flight/fill_lease_renewal.h"

#include <gtest/gtest.h>

#include "tests/testing/fake_clock.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kWindow = 30s;
constexpr std::chrono::milliseconds kTtl = 30s;

// A holder that renews every 10 s, as FillGate's Hold does with its renew interval, and stops
// as soon as the decision says so. Returns the decision at each tick.
struct Holder {
  testing::FakeClock clock;
  Clock::TimePoint last_progress = clock.Now();
  Clock::TimePoint expires = clock.Now() + kTtl;

  FillLeaseRenewal Tick() {
    clock.Advance(10s);
    FillLeaseRenewal renewal =
        DecideFillLeaseRenewal(last_progress, expires, clock.Now(), kWindow);
    if (renewal == FillLeaseRenewal::kRenew) expires = clock.Now() + kTtl;
    return renewal;
  }
};

TEST(FillLeaseRenewal, AFillThatLandsBytesKeepsRenewing) {
  Holder holder;
  for (int tick = 0; tick < 100; ++tick) {
    EXPECT_EQ(holder.Tick(), FillLeaseRenewal::kRenew) << "tick " << tick;
    holder.last_progress = holder.clock.Now();  // bytes landed since the last tick
  }
}

TEST(FillLeaseRenewal, AStalledFillStopsRenewingThenLapsesAtItsExpiry) {
  Holder holder;
  // Within the window (its end included): still renewed.
  EXPECT_EQ(holder.Tick(), FillLeaseRenewal::kRenew);  // 10 s
  EXPECT_EQ(holder.Tick(), FillLeaseRenewal::kRenew);  // 20 s
  EXPECT_EQ(holder.Tick(), FillLeaseRenewal::kRenew);  // 30 s: renewed until 60 s
  // No bytes for longer than the window: the lease is left to lapse...
  EXPECT_EQ(holder.Tick(), FillLeaseRenewal::kLetLapse);  // 40 s
  EXPECT_EQ(holder.Tick(), FillLeaseRenewal::kLetLapse);  // 50 s
  // ... and at the expiry of the last renewal the holder gives the fill up.
  EXPECT_EQ(holder.Tick(), FillLeaseRenewal::kLapsed);  // 60 s
}

TEST(FillLeaseRenewal, ProgressBeforeTheExpiryRenewsAgain) {
  Holder holder;
  for (int tick = 0; tick < 4; ++tick) holder.Tick();  // 40 s: letting it lapse
  ASSERT_EQ(DecideFillLeaseRenewal(holder.last_progress, holder.expires, holder.clock.Now(),
                                   kWindow),
            FillLeaseRenewal::kLetLapse);
  holder.last_progress = holder.clock.Now();  // the fill moves again
  EXPECT_EQ(holder.Tick(), FillLeaseRenewal::kRenew);
}

TEST(FillLeaseRenewal, AWindowShorterThanTheRenewIntervalStillRenewsAFreshTurn) {
  testing::FakeClock clock;
  const Clock::TimePoint turn = clock.Now();
  EXPECT_EQ(DecideFillLeaseRenewal(turn, turn + kTtl, clock.Now(), 1s), FillLeaseRenewal::kRenew);
  clock.Advance(2s);
  EXPECT_EQ(DecideFillLeaseRenewal(turn, turn + kTtl, clock.Now(), 1s),
            FillLeaseRenewal::kLetLapse);
  clock.Advance(kTtl);
  EXPECT_EQ(DecideFillLeaseRenewal(turn, turn + kTtl, clock.Now(), 1s), FillLeaseRenewal::kLapsed);
}

}  // namespace
}  // namespace modelcache
