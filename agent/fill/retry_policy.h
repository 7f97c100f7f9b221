#pragma once
// When and how long to wait before fetching a failed chunk again. Pure, given its random source.
#include <chrono>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "agent/fill/fill_settings.h"

namespace modelcache {

class RetryPolicy {
 public:
  // Returns a uniformly distributed number in [0, 1); injected so tests are deterministic.
  using RandomFn = std::function<double()>;

  RetryPolicy(const RetrySettings& settings, RandomFn random);

  // UNAVAILABLE and DEADLINE_EXCEEDED: the network or the origin may recover. Everything
  // else (not found, denied, file changed, no space, ...) fails the same way again.
  static bool IsRetryable(absl::StatusCode code);

  // After `failed_attempts` (>= 1) attempts at a chunk, the last ending in `status`: try again?
  // Yes when the status is retryable and fewer than settings.max_attempts were made.
  bool ShouldRetry(uint32_t failed_attempts, const absl::Status& status) const;

  // How long to wait before the next attempt, after `failed_attempts` (>= 1) failures: full
  // jitter, uniform in [0, min(max_backoff, initial_backoff * 2^(failed_attempts - 1))].
  std::chrono::milliseconds Backoff(uint32_t failed_attempts) const;
  // As Backoff, but never shorter than the wait the origin asked for with `status`
  // (retry_after.h: a 429 or 503 with Retry-After or RateLimit), capped at kLongestAskedWait.
  std::chrono::milliseconds Backoff(uint32_t failed_attempts, const absl::Status& status) const;

  static constexpr std::chrono::seconds kLongestAskedWait{300};

 private:
  RetrySettings settings_;
  RandomFn random_;
};

}  // namespace modelcache
