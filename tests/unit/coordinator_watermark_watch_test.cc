#include "coordinator/policy/watermark_watch.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

TEST(WatermarkWatch, OnlyTheReportThatCrossesTheHighWatermarkTriggers) {
  WatermarkWatch watch;
  EXPECT_FALSE(watch.Observe("vol", 80, 100, 0.9));
  EXPECT_FALSE(watch.Observe("vol", 90, 100, 0.9));  // at the watermark is not above it
  EXPECT_TRUE(watch.Observe("vol", 91, 100, 0.9));
  EXPECT_FALSE(watch.Observe("vol", 95, 100, 0.9));  // still above: no new pass
  EXPECT_FALSE(watch.Observe("vol", 70, 100, 0.9));  // purged below
  EXPECT_TRUE(watch.Observe("vol", 99, 100, 0.9));   // crosses again
}

TEST(WatermarkWatch, AVolumeFirstSeenAboveTriggersAndVolumesAreApart) {
  WatermarkWatch watch;
  EXPECT_TRUE(watch.Observe("a", 95, 100, 0.9));
  EXPECT_TRUE(watch.Observe("b", 95, 100, 0.9));
  EXPECT_FALSE(watch.Observe("a", 96, 100, 0.9));
}

TEST(WatermarkWatch, NoQuotaNeverTriggers) {
  WatermarkWatch watch;
  EXPECT_FALSE(watch.Observe("vol", 1'000'000, 0, 0.9));
}

}  // namespace
}  // namespace modelcache
