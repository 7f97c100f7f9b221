#pragma once
// How long an origin asks to be left alone after a 429 or 503: the Retry-After header
// (seconds or an HTTP date) or the IETF RateLimit fields the Hugging Face Hub sends
// ("RateLimit: \"api\";r=0;t=55", or the older "limit=.., remaining=0, reset=55"). Pure.
#include <chrono>
#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace modelcache {

// The wait a response asks for, from its Retry-After and RateLimit header values (either may
// be empty); nullopt when neither states one. `now_unix_seconds` turns an HTTP date into a
// delay. A wait in the past is zero.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view retry_after, std::string_view rate_limit,
                                                    int64_t now_unix_seconds);

// A status that carries the wait an origin asked for, and reading it back: the chunk engine
// attaches it to the UNAVAILABLE of a 429/503 so the retry waits at least that long.
void SetRetryAfter(absl::Status& status, std::chrono::seconds wait);
std::optional<std::chrono::seconds> RetryAfterOf(const absl::Status& status);

}  // namespace modelcache
