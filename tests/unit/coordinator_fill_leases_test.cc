#include "coordinator/fill_leases.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/testing/fake_clock.h"

namespace modelcache {
namespace {

using std::chrono::milliseconds;

using testing::FakeClock;

v1::FillLeaseRequest Request(const std::string& holder, uint64_t fencing = 0) {
  v1::FillLeaseRequest request;
  request.set_volume_id("vol");
  request.set_name("llama");
  request.set_version("v1");
  request.set_holder(holder);
  request.set_ttl_ms(10'000);
  request.set_fencing(fencing);
  return request;
}

v1::WatchFillLeaseRequest WatchRequest(uint64_t after_change, uint32_t wait_ms) {
  v1::WatchFillLeaseRequest request;
  request.set_volume_id("vol");
  request.set_name("llama");
  request.set_version("v1");
  request.set_after_change(after_change);
  request.set_wait_ms(wait_ms);
  return request;
}

TEST(FillLeaseTable, SecondAgentIsToldWhoFills) {
  FakeClock clock;
  FillLeaseTable table(clock);
  absl::StatusOr<v1::FillLease> first = table.Acquire(Request("a"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->granted());
  absl::StatusOr<v1::FillLease> second = table.Acquire(Request("b"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->granted());
  EXPECT_EQ(second->holder(), "a");
  EXPECT_EQ(second->state(), v1::FillLease::HELD);
  EXPECT_EQ(second->fencing(), first->fencing());
}

TEST(FillLeaseTable, OtherVolumesAndModelsAreIndependent) {
  FakeClock clock;
  FillLeaseTable table(clock);
  ASSERT_TRUE(table.Acquire(Request("a"))->granted());
  v1::FillLeaseRequest other_volume = Request("b");
  other_volume.set_volume_id("vol2");
  EXPECT_TRUE(table.Acquire(other_volume)->granted());
  v1::FillLeaseRequest other_version = Request("b");
  other_version.set_version("v2");
  EXPECT_TRUE(table.Acquire(other_version)->granted());
}

TEST(FillLeaseTable, ExpiredLeaseIsTakenOverWithHigherFencing) {
  FakeClock clock;
  FillLeaseTable table(clock);
  v1::FillLease first = *table.Acquire(Request("a"));
  clock.Advance(milliseconds(10'001));
  v1::FillLease taken = *table.Acquire(Request("b"));
  EXPECT_TRUE(taken.granted());
  EXPECT_EQ(taken.holder(), "b");
  EXPECT_GT(taken.fencing(), first.fencing());
  // The old holder can neither renew nor release any more.
  absl::StatusOr<v1::FillLease> renewed = table.Renew(Request("a", first.fencing()));
  EXPECT_TRUE(absl::IsAborted(renewed.status())) << renewed.status();
  EXPECT_TRUE(absl::IsAborted(table.Release(Request("a", first.fencing())).status()));
}

TEST(FillLeaseTable, RenewCarriesProgressAndExtends) {
  FakeClock clock;
  FillLeaseTable table(clock);
  v1::FillLease first = *table.Acquire(Request("a"));
  clock.Advance(milliseconds(8'000));
  v1::FillLeaseRequest renew = Request("a", first.fencing());
  renew.set_bytes_done(300);
  renew.set_bytes_total(1000);
  ASSERT_TRUE(table.Renew(renew).ok());
  clock.Advance(milliseconds(8'000));  // 16 s after acquire: alive thanks to the renew
  v1::FillLease seen = *table.Acquire(Request("b"));
  EXPECT_FALSE(seen.granted());
  EXPECT_EQ(seen.bytes_done(), 300u);
  EXPECT_EQ(seen.bytes_total(), 1000u);
}

TEST(FillLeaseTable, RenewWithWrongFencingIsAborted) {
  FakeClock clock;
  FillLeaseTable table(clock);
  v1::FillLease first = *table.Acquire(Request("a"));
  EXPECT_TRUE(absl::IsAborted(table.Renew(Request("a", first.fencing() + 1)).status()));
}

TEST(FillLeaseTable, ReleasedLeaseIsGrantedAgainWithNewFencing) {
  FakeClock clock;
  FillLeaseTable table(clock);
  v1::FillLease first = *table.Acquire(Request("a"));
  v1::FillLeaseRequest release = Request("a", first.fencing());
  release.set_published(true);
  v1::FillLease released = *table.Release(release);
  EXPECT_EQ(released.state(), v1::FillLease::PUBLISHED);
  v1::FillLease again = *table.Acquire(Request("b"));
  EXPECT_TRUE(again.granted());
  EXPECT_GT(again.fencing(), first.fencing());
}

TEST(FillLeaseTable, AFailedFillIsToldToItsWaitersAndANewAttemptStartsClean) {
  FakeClock clock;
  FillLeaseTable table(clock);
  absl::StatusOr<v1::FillLease> held = table.Acquire(Request("a"));
  ASSERT_TRUE(held.ok() && held->granted());
  absl::StatusOr<v1::FillLease> waiting = table.Acquire(Request("b"));
  ASSERT_TRUE(waiting.ok() && !waiting->granted());

  v1::FillLeaseRequest release = Request("a", held->fencing());
  release.set_error_code(static_cast<int32_t>(absl::StatusCode::kNotFound));
  release.set_error_message("model llama@v1: listing: HTTP 404");
  absl::StatusOr<v1::FillLease> failed = table.Release(release);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state(), v1::FillLease::FAILED);

  // The waiter's watch sees the failure with its error ...
  absl::StatusOr<v1::FillLease> watched = table.Watch(WatchRequest(waiting->change(), 0), {});
  ASSERT_TRUE(watched.ok());
  EXPECT_EQ(watched->state(), v1::FillLease::FAILED);
  EXPECT_EQ(watched->fencing(), held->fencing());
  EXPECT_EQ(watched->error_code(), static_cast<int32_t>(absl::StatusCode::kNotFound));
  EXPECT_EQ(watched->error_message(), "model llama@v1: listing: HTTP 404");
  // ... and so does its acquire naming the fill it waited for: no new attempt for it.
  v1::FillLeaseRequest waiter = Request("b");
  waiter.set_waited_fencing(held->fencing());
  absl::StatusOr<v1::FillLease> refused = table.Acquire(waiter);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->granted());
  EXPECT_EQ(refused->state(), v1::FillLease::FAILED);

  // A new Ensure (no waited fencing) may try again, with a new fencing and no error.
  absl::StatusOr<v1::FillLease> again = table.Acquire(Request("c"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->granted());
  EXPECT_GT(again->fencing(), held->fencing());
  EXPECT_EQ(again->error_code(), 0);
  EXPECT_TRUE(again->error_message().empty());
}

TEST(FillLeaseTable, WatchAnswersAtOnceWhenChangedSince) {
  FakeClock clock;
  FillLeaseTable table(clock);
  v1::FillLease first = *table.Acquire(Request("a"));
  absl::StatusOr<v1::FillLease> seen = table.Watch(WatchRequest(0, 10'000), nullptr);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->state(), v1::FillLease::HELD);
  EXPECT_EQ(seen->change(), first.change());
}

TEST(FillLeaseTable, WatchWakesOnRelease) {
  FakeClock clock;
  FillLeaseTable table(clock);
  v1::FillLease first = *table.Acquire(Request("a"));
  std::atomic<bool> returned{false};
  absl::StatusOr<v1::FillLease> seen;
  std::thread watcher([&] {
    seen = table.Watch(WatchRequest(first.change(), 20'000), nullptr);
    returned = true;
  });
  v1::FillLeaseRequest release = Request("a", first.fencing());
  release.set_published(true);
  ASSERT_TRUE(table.Release(release).ok());
  watcher.join();
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->state(), v1::FillLease::PUBLISHED);
  EXPECT_GT(seen->change(), first.change());
}

TEST(FillLeaseTable, WatchTimesOutWithoutChange) {
  FakeClock clock;
  FillLeaseTable table(clock);
  v1::FillLease first = *table.Acquire(Request("a"));
  auto started = std::chrono::steady_clock::now();
  absl::StatusOr<v1::FillLease> seen = table.Watch(WatchRequest(first.change(), 100), nullptr);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->change(), first.change());
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(100));
}

TEST(FillLeaseTable, RejectsBadRequests) {
  FakeClock clock;
  FillLeaseTable table(clock);
  v1::FillLeaseRequest no_holder = Request("");
  EXPECT_TRUE(absl::IsInvalidArgument(table.Acquire(no_holder).status()));
  v1::FillLeaseRequest no_volume = Request("a");
  no_volume.set_volume_id("");
  EXPECT_TRUE(absl::IsInvalidArgument(table.Acquire(no_volume).status()));
  v1::FillLeaseRequest bad_name = Request("a");
  bad_name.set_name("../x");
  EXPECT_TRUE(absl::IsInvalidArgument(table.Acquire(bad_name).status()));
}

}  // namespace
}  // namespace modelcache
