#include "common/duration.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

using std::chrono::seconds;

TEST(Duration, ParsesEachUnit) {
  EXPECT_EQ(*ParseDuration("90s"), seconds(90));
  EXPECT_EQ(*ParseDuration("5m"), seconds(300));
  EXPECT_EQ(*ParseDuration("12h"), seconds(12 * 3600));
  EXPECT_EQ(*ParseDuration("7d"), seconds(7 * 86400));
  EXPECT_EQ(*ParseDuration("1w"), seconds(7 * 86400));
  EXPECT_EQ(*ParseDuration("0s"), seconds(0));
}

TEST(Duration, RejectsBadValuesAndQuotesThem) {
  for (std::string_view text : {"", "10", "s", "-1h", "1.5h", "10x", "1hh", "1 h", " 1h",
                                "99999999999999999999s", "9223372036854775807w"}) {
    absl::StatusOr<seconds> parsed = ParseDuration(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(parsed.status().message()).find("\"" + std::string(text) + "\""),
              std::string::npos)
        << parsed.status().message();
  }
}

TEST(Duration, FormatsWithLargestExactUnit) {
  EXPECT_EQ(FormatDuration(seconds(90)), "90s");
  EXPECT_EQ(FormatDuration(seconds(3600)), "1h");
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(seconds(120)), "2m");
  EXPECT_EQ(FormatDuration(seconds(2 * 86400)), "2d");
  EXPECT_EQ(FormatDuration(seconds(14 * 86400)), "2w");
  EXPECT_EQ(FormatDuration(seconds(36 * 3600)), "36h");
}

TEST(Duration, FormatParsesBack) {
  for (int64_t value : {1, 59, 61, 3600, 3601, 86400, 90000, 604800, 1209601}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(seconds(value))), seconds(value)) << value;
  }
}

}  // namespace
}  // namespace modelcache
