#include "agent/fill/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "agent/fill/retry_after.h"

namespace modelcache {

RetryPolicy::RetryPolicy(const RetrySettings& settings, RandomFn random)
    : settings_(settings), random_(std::move(random)) {}

bool RetryPolicy::IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded;
}

bool RetryPolicy::ShouldRetry(uint32_t failed_attempts, const absl::Status& status) const {
  return !status.ok() && IsRetryable(status.code()) && failed_attempts < settings_.max_attempts;
}

std::chrono::milliseconds RetryPolicy::Backoff(uint32_t failed_attempts) const {
  const int64_t initial = std::max<int64_t>(0, settings_.initial_backoff.count());
  const int64_t max = std::max<int64_t>(0, settings_.max_backoff.count());
  // Doubling stops at the cap; the exponent is bounded so the shift cannot overflow.
  int64_t cap = initial;
  for (uint32_t doubling = 1; doubling < failed_attempts && cap > 0 && cap < max; ++doubling) cap *= 2;
  cap = std::min(cap, max);
  double fraction = std::clamp(random_(), 0.0, 1.0);
  // Uniform over the cap + 1 whole milliseconds 0..cap.
  int64_t wait = static_cast<int64_t>(std::floor(fraction * static_cast<double>(cap + 1)));
  return std::chrono::milliseconds(std::min(wait, cap));
}

std::chrono::milliseconds RetryPolicy::Backoff(uint32_t failed_attempts, const absl::Status& status) const {
  const std::chrono::milliseconds backoff = Backoff(failed_attempts);
  const std::optional<std::chrono::seconds> asked = RetryAfterOf(status);
  if (!asked) return backoff;
  return std::max<std::chrono::milliseconds>(backoff, std::min(*asked, kLongestAskedWait));
}

}  // namespace modelcache
