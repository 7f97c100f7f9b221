#include "agent/source/polite_http.h"

#include <algorithm>
#include <ctime>
#include <thread>

#include "agent/fill/retry_after.h"
#include "common/log_fields.h"
#include "spdlog/spdlog.h"

namespace modelcache {

absl::StatusOr<HttpResponse> PerformPolitely(const HttpRequest& request, const PoliteOptions& options) {
  std::chrono::seconds fallback{1};
  for (int waits = 0;; ++waits) {
    absl::StatusOr<HttpResponse> response = PerformHttpRequest(request);
    if (!response.ok()) return response;
    const bool limited = response->status_code == 429 || response->status_code == 503;
    if (!limited || waits >= options.max_waits) return response;
    std::optional<std::chrono::seconds> asked =
        ParseRetryAfter(response->Header("Retry-After").value_or(""), response->Header("RateLimit").value_or(""),
                        static_cast<int64_t>(std::time(nullptr)));
    if (!asked && response->status_code == 503) return response;  // an outage, not a rate limit
    const std::chrono::seconds wait = std::min(asked.value_or(fallback), options.longest_wait);
    fallback *= 2;
    spdlog::info("origin rate limit: waiting {}", LogFields()
                                                      .Add("url", request.url)
                                                      .Add("status", response->status_code)
                                                      .Add("wait_seconds", wait.count()));
    std::this_thread::sleep_for(wait);
  }
}

}  // namespace modelcache
