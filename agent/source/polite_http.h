#pragma once
// Blocking API requests to origins that rate-limit (the Hugging Face Hub, registries): a 429,
// or a 503 that says when to come back, is waited out as the answer's Retry-After or RateLimit
// header asks (retry_after.h), or 1, 2, 4.. seconds when it says nothing, a bounded number of
// times. Never on the loop thread.
#include <chrono>

#include "absl/status/statusor.h"
#include "agent/source/blocking_http.h"

namespace modelcache {

struct PoliteOptions {
  int max_waits = 5;                         // then the 429 is returned as it is
  std::chrono::seconds longest_wait{120};    // a longer Retry-After is cut to this
};

// As PerformHttpRequest; the final answer may still be a 429 when the waits ran out.
absl::StatusOr<HttpResponse> PerformPolitely(const HttpRequest& request, const PoliteOptions& options = {});

}  // namespace modelcache
