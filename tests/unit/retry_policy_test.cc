#include "agent/fill/retry_policy.h"

#include <random>

#include "gtest/gtest.h"

namespace modelcache {
namespace {

using std::chrono::milliseconds;

RetrySettings Settings() {
  RetrySettings settings;
  settings.max_attempts = 4;
  settings.initial_backoff = milliseconds(200);
  settings.max_backoff = milliseconds(1000);
  return settings;
}

// Just below 1: the top of the jitter range.
constexpr double kTop = 0.999999999;

TEST(RetryPolicy, OnlyUnavailableAndDeadlineExceededAreRetryable) {
  EXPECT_TRUE(RetryPolicy::IsRetryable(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(RetryPolicy::IsRetryable(absl::StatusCode::kDeadlineExceeded));
  for (absl::StatusCode code :
       {absl::StatusCode::kOk, absl::StatusCode::kNotFound, absl::StatusCode::kPermissionDenied,
        absl::StatusCode::kAborted, absl::StatusCode::kFailedPrecondition,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kInternal, absl::StatusCode::kCancelled}) {
    EXPECT_FALSE(RetryPolicy::IsRetryable(code)) << absl::StatusCodeToString(code);
  }
}

TEST(RetryPolicy, RetriesUntilMaxAttemptsWereMade) {
  RetryPolicy policy(Settings(), [] { return 0.5; });
  const absl::Status unavailable = absl::UnavailableError("GET x: HTTP 503");
  EXPECT_TRUE(policy.ShouldRetry(1, unavailable));
  EXPECT_TRUE(policy.ShouldRetry(3, unavailable));
  EXPECT_FALSE(policy.ShouldRetry(4, unavailable));
  EXPECT_FALSE(policy.ShouldRetry(5, unavailable));
  EXPECT_TRUE(policy.ShouldRetry(2, absl::DeadlineExceededError("stalled")));
}

TEST(RetryPolicy, NeverRetriesPermanentErrorsOrSuccess) {
  RetryPolicy policy(Settings(), [] { return 0.5; });
  EXPECT_FALSE(policy.ShouldRetry(1, absl::NotFoundError("GET x: HTTP 404")));
  EXPECT_FALSE(policy.ShouldRetry(1, absl::AbortedError("file changed")));
  EXPECT_FALSE(policy.ShouldRetry(1, absl::OkStatus()));
}

TEST(RetryPolicy, SingleAttemptSettingNeverRetries) {
  RetrySettings settings = Settings();
  settings.max_attempts = 1;
  RetryPolicy policy(settings, [] { return 0.5; });
  EXPECT_FALSE(policy.ShouldRetry(1, absl::UnavailableError("x")));
}

TEST(RetryPolicy, BackoffCeilingDoublesFromInitialUpToMax) {
  RetryPolicy policy(Settings(), [] { return kTop; });
  EXPECT_EQ(policy.Backoff(1), milliseconds(200));
  EXPECT_EQ(policy.Backoff(2), milliseconds(400));
  EXPECT_EQ(policy.Backoff(3), milliseconds(800));
  EXPECT_EQ(policy.Backoff(4), milliseconds(1000));
  EXPECT_EQ(policy.Backoff(60), milliseconds(1000));
  EXPECT_EQ(policy.Backoff(4'000'000'000u), milliseconds(1000));
}

TEST(RetryPolicy, BackoffIsFullJitterFromZero) {
  RetryPolicy at_zero(Settings(), [] { return 0.0; });
  EXPECT_EQ(at_zero.Backoff(3), milliseconds(0));
  RetryPolicy at_half(Settings(), [] { return 0.5; });
  EXPECT_NEAR(at_half.Backoff(3).count(), 400, 1);
}

TEST(RetryPolicy, BackoffStaysWithinItsRangeForAnyDraw) {
  std::mt19937_64 engine(7);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  RetryPolicy policy(Settings(), [&] { return uniform(engine); });
  milliseconds largest(0);
  for (int i = 0; i < 2000; ++i) {
    milliseconds wait = policy.Backoff(2);
    ASSERT_GE(wait.count(), 0);
    ASSERT_LE(wait.count(), 400);
    largest = std::max(largest, wait);
  }
  EXPECT_GT(largest.count(), 300);  // the draws do spread over the range
}

}  // namespace
}  // namespace modelcache
