#pragma once
// Durations in configuration: an integer and one unit of s, m, h, d, w ("90s", "12h", "1w").
#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache {

// INVALID_ARGUMENT for an empty value, a missing or unknown unit, a negative or overflowing
// number; the message quotes the value.
absl::StatusOr<std::chrono::seconds> ParseDuration(std::string_view text);

// The largest unit that divides exactly: 90s -> "90s", 3600s -> "1h", 0 -> "0s".
std::string FormatDuration(std::chrono::seconds duration);

}  // namespace modelcache
