#include "common/duration.h"

#include <cstdint>
#include <limits>

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// Seconds per unit, 0 for an unknown unit.
int64_t UnitSeconds(char unit) {
  switch (unit) {
    case 's':
      return 1;
    case 'm':
      return 60;
    case 'h':
      return 3600;
    case 'd':
      return 86400;
    case 'w':
      return 7 * 86400;
    default:
      return 0;
  }
}

}  // namespace

absl::StatusOr<std::chrono::seconds> ParseDuration(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("duration \"{}\": {}", text, why));
  };
  if (text.empty()) return invalid("empty (want an integer and a unit of s, m, h, d, w)");
  if (text.front() == '-') return invalid("negative");
  size_t digits = 0;
  int64_t value = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    int digit = text[digits] - '0';
    if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) return invalid("too large");
    value = value * 10 + digit;
    ++digits;
  }
  if (digits == 0) return invalid("does not start with a number");
  if (digits == text.size()) return invalid("missing unit (s, m, h, d or w)");
  if (digits + 1 != text.size()) return invalid("unknown unit (want s, m, h, d or w)");
  int64_t unit = UnitSeconds(text.back());
  if (unit == 0) return invalid("unknown unit (want s, m, h, d or w)");
  if (value > std::numeric_limits<int64_t>::max() / unit) return invalid("too large");
  return std::chrono::seconds(value * unit);
}

std::string FormatDuration(std::chrono::seconds duration) {
  int64_t seconds = duration.count();
  if (seconds == 0) return "0s";
  for (char unit : {'w', 'd', 'h', 'm'}) {
    int64_t size = UnitSeconds(unit);
    if (seconds % size == 0) return fmt::format("{}{}", seconds / size, unit);
  }
  return fmt::format("{}s", seconds);
}

}  // namespace modelcache
