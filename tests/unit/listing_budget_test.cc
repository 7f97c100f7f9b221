#include "agent/source/listing_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelcache {
namespace {

using ::testing::HasSubstr;

TEST(ListingBudget, ListingsShareTheTotalAndGiveItBackWhenDone) {
  ListingBudget budget({.max_total_bytes = 100, .max_in_flight = 4});
  absl::StatusOr<std::unique_ptr<ListingBudget::Listing>> a = budget.Enter("http://a/");
  absl::StatusOr<std::unique_ptr<ListingBudget::Listing>> b = budget.Enter("http://b/");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE((*a)->Charge(60));
  EXPECT_FALSE((*b)->Charge(50)) << "60 + 50 would pass the total of 100";
  EXPECT_TRUE((*b)->Charge(40));
  EXPECT_EQ(budget.bytes_in_use(), 100u);
  a->reset();
  EXPECT_EQ(budget.bytes_in_use(), 40u);
  EXPECT_EQ(budget.in_flight(), 1u);
  EXPECT_TRUE((*b)->Charge(50));
}

TEST(ListingBudget, TooManyListingsAtOnceAreRefusedNamingTheSourceAndKey) {
  ListingBudget budget({.max_total_bytes = 100, .max_in_flight = 2});
  auto a = budget.Enter("http://a/");
  auto b = budget.Enter("http://b/");
  auto c = budget.Enter("http://c/m/");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(c.status().message(), HasSubstr("http://c/m/"));
  EXPECT_THAT(c.status().message(), HasSubstr("listing.maxInFlight"));
  a->reset();
  EXPECT_TRUE(budget.Enter("http://c/m/").ok());
}

TEST(ListingBudget, ACutListingSaysWhatAndHowMuch) {
  ListingBudget budget({.max_total_bytes = 100, .max_in_flight = 2});
  auto a = budget.Enter("http://origin/m/");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Charge(100));
  absl::Status cut = (*a)->CutError("GET http://origin/m/modelcache.json");
  EXPECT_EQ(cut.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(cut.message(), HasSubstr("GET http://origin/m/modelcache.json cut after 100 bytes"));
  EXPECT_THAT(cut.message(), HasSubstr("listing.maxTotalBytes"));
}

}  // namespace
}  // namespace modelcache
