#include "agent/source/stall_watch.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

using namespace std::chrono_literals;
using Clock = StallWatch::Clock;

class StallWatchTest : public ::testing::Test {
 protected:
  Clock::time_point At(std::chrono::milliseconds since_start) const { return start_ + since_start; }
  Clock::time_point start_ = Clock::time_point() + 1000s;
};

TEST_F(StallWatchTest, NothingForAWholeWindowIsAStall) {
  StallWatch watch(3s);
  watch.Start(start_);
  EXPECT_FALSE(watch.Stalled(At(2999ms)));
  EXPECT_TRUE(watch.Stalled(At(3000ms)));
  EXPECT_EQ(watch.BytesInWindow(At(3000ms)), 0u);
  EXPECT_EQ(watch.Describe(At(3000ms)), "0 bytes in the last 3s, below the minimum of 3 (1 byte/s)");
}

TEST_F(StallWatchTest, ADripBelowOneBytePerSecondIsAStallAndTheMessageSaysWhatCame) {
  // The origin of issue 11: a byte now and then; "no data for 3s" was wrong.
  StallWatch watch(3s);
  watch.Start(start_);
  watch.Observe(At(500ms), 1);
  watch.Observe(At(2000ms), 2);
  EXPECT_FALSE(watch.Stalled(At(2900ms)));  // not a whole window yet
  EXPECT_TRUE(watch.Stalled(At(3000ms)));
  EXPECT_EQ(watch.BytesInWindow(At(3000ms)), 2u);
  EXPECT_EQ(watch.Describe(At(3000ms)), "2 bytes in the last 3s, below the minimum of 3 (1 byte/s)");
}

TEST_F(StallWatchTest, EnoughBytesInTheLastWindowIsNoStall) {
  StallWatch watch(3s);
  watch.Start(start_);
  for (int second = 1; second <= 10; ++second) {
    watch.Observe(At(std::chrono::milliseconds(second * 1000)), static_cast<uint64_t>(second));
    EXPECT_FALSE(watch.Stalled(At(std::chrono::milliseconds(second * 1000))));
  }
  EXPECT_EQ(watch.BytesInWindow(At(10'000ms)), 3u);
}

TEST_F(StallWatchTest, OnlyTheLastWindowCounts) {
  StallWatch watch(3s);
  watch.Start(start_);
  watch.Observe(At(100ms), 1'000'000);  // a burst, then silence
  EXPECT_FALSE(watch.Stalled(At(3000ms)));
  EXPECT_EQ(watch.BytesInWindow(At(3050ms)), 1'000'000u);
  EXPECT_TRUE(watch.Stalled(At(3100ms)));
  EXPECT_EQ(watch.BytesInWindow(At(3100ms)), 0u);
}

TEST_F(StallWatchTest, APauseOfOursRestartsTheWindowFromTheBytesSoFar) {
  StallWatch watch(3s);
  watch.Start(start_);
  watch.Observe(At(500ms), 100);
  watch.Restart(At(5000ms));  // our side had no room from 500 ms to 5 s
  EXPECT_FALSE(watch.Stalled(At(7999ms)));
  EXPECT_EQ(watch.BytesInWindow(At(7999ms)), 0u);  // the 100 bytes came before the restart
  watch.Observe(At(6000ms), 103);
  EXPECT_FALSE(watch.Stalled(At(8000ms)));
  EXPECT_TRUE(watch.Stalled(At(9100ms)));
}

TEST_F(StallWatchTest, ManyCallbacksKeepFewSamples) {
  StallWatch watch(2s);
  watch.Start(start_);
  for (int ms = 1; ms <= 60'000; ++ms) watch.Observe(At(std::chrono::milliseconds(ms)), ms);
  EXPECT_FALSE(watch.Stalled(At(60'000ms)));
  // 2 s at 1000 bytes/s, read off samples 100 ms apart.
  EXPECT_NEAR(static_cast<double>(watch.BytesInWindow(At(60'000ms))), 2000.0, 150.0);
}

}  // namespace
}  // namespace modelcache
