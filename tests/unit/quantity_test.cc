#include "common/quantity.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

TEST(Quantity, ParsesBinarySuffixes) {
  EXPECT_EQ(*ParseQuantity("1Ki"), 1024u);
  EXPECT_EQ(*ParseQuantity("300Gi"), 300ull << 30);
  EXPECT_EQ(*ParseQuantity("1Ti"), 1ull << 40);
  EXPECT_EQ(*ParseQuantity("2Pi"), 2ull << 50);
  EXPECT_EQ(*ParseQuantity("15Ei"), 15ull << 60);
}

TEST(Quantity, ParsesDecimalSuffixesAndPlainNumbers) {
  EXPECT_EQ(*ParseQuantity("123"), 123u);
  EXPECT_EQ(*ParseQuantity("0"), 0u);
  EXPECT_EQ(*ParseQuantity("500M"), 500'000'000u);
  EXPECT_EQ(*ParseQuantity("2k"), 2000u);
  EXPECT_EQ(*ParseQuantity("1G"), 1'000'000'000u);
  EXPECT_EQ(*ParseQuantity("3T"), 3'000'000'000'000u);
  EXPECT_EQ(*ParseQuantity("1E"), 1'000'000'000'000'000'000u);
}

TEST(Quantity, ParsesExponents) {
  EXPECT_EQ(*ParseQuantity("1e3"), 1000u);
  EXPECT_EQ(*ParseQuantity("1E3"), 1000u);
  EXPECT_FALSE(ParseQuantity("15e-1").ok());  // 1.5 bytes
  EXPECT_EQ(*ParseQuantity("2000e-3"), 2u);
  EXPECT_EQ(*ParseQuantity("1.5e3"), 1500u);
}

TEST(Quantity, AcceptsFractionsThatAreWholeBytes) {
  EXPECT_EQ(*ParseQuantity("1.5Gi"), 3ull << 29);
  EXPECT_EQ(*ParseQuantity("0.5Ki"), 512u);
  EXPECT_EQ(*ParseQuantity("2.25k"), 2250u);
  EXPECT_EQ(*ParseQuantity("1.000"), 1u);
}

TEST(Quantity, RejectsBadValuesAndNamesThem) {
  for (std::string_view text : {"", "-1Gi", "1.5", "0.1", "10X", "Gi", "1GiB", "1 Gi", "1e", "16Ei",
                                "18446744073709551616", "1e20", "1..5"}) {
    absl::StatusOr<uint64_t> parsed = ParseQuantity(text);
    ASSERT_FALSE(parsed.ok()) << text << " parsed as " << *parsed;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(parsed.status().message()).find("\"" + std::string(text) + "\""),
              std::string::npos)
        << parsed.status().message();
  }
}

TEST(Quantity, LargestValueFits) { EXPECT_EQ(*ParseQuantity("18446744073709551615"), UINT64_MAX); }

TEST(FormatBytes, UsesBinaryUnits) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1024), "1.0 KiB");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(5ull << 30), "5.0 GiB");
  EXPECT_EQ(FormatBytes(3ull << 39), "1.5 TiB");
  EXPECT_EQ(FormatBytes((1ull << 20) - 1), "1.0 MiB");  // rounds up into the next unit
  EXPECT_EQ(FormatBytes(UINT64_MAX), "16.0 EiB");
}

}  // namespace
}  // namespace modelcache
