#include "agent/fill/range_fallback.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

TEST(RangeFallback, AStrayWholeFileAnswerAmongServedRangesIsRetriedAsARange) {
  EXPECT_FALSE(ShouldStreamWholeFile({.served = 40, .ignored = 1}, {.served = 40, .ignored = 1}, true));
  // Many strays, but the origin serves ranges for this file too: keep asking for ranges.
  EXPECT_FALSE(ShouldStreamWholeFile({.served = 1, .ignored = 9}, {.served = 1, .ignored = 9}, true));
}

TEST(RangeFallback, AFileWhoseRangesAreAlwaysIgnoredIsStreamed) {
  EXPECT_FALSE(ShouldStreamWholeFile({.served = 0, .ignored = 2}, {.served = 50, .ignored = 2}, true));
  EXPECT_TRUE(ShouldStreamWholeFile({.served = 0, .ignored = kIgnoredRangesBeforeStream},
                                    {.served = 50, .ignored = kIgnoredRangesBeforeStream}, true));
}

TEST(RangeFallback, AnOriginThatNeverServedARangeStreamsEveryFile) {
  const RangeAnswers fill{.served = 0, .ignored = kIgnoredRangesBeforeStream};
  EXPECT_TRUE(OriginIgnoresRanges(fill));
  EXPECT_TRUE(ShouldStreamWholeFile({.served = 0, .ignored = 1}, fill, true));
  EXPECT_FALSE(OriginIgnoresRanges({.served = 1, .ignored = 30}));
  EXPECT_FALSE(OriginIgnoresRanges({.served = 0, .ignored = kIgnoredRangesBeforeStream - 1}));
}

TEST(RangeFallback, AChunkOutOfAttemptsStreamsItsFileInsteadOfFailingTheFill) {
  EXPECT_TRUE(ShouldStreamWholeFile({.served = 30, .ignored = 1}, {.served = 30, .ignored = 1}, false));
}

}  // namespace
}  // namespace modelcache
