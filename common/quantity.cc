#include "common/quantity.h"

#include <cstdio>
#include <limits>

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

using Wide = unsigned __int128;

constexpr int kMaxDigits = 30;  // keeps every intermediate value far below 2^128

Wide PowerOf(Wide base, int exponent) {
  Wide result = 1;
  for (int i = 0; i < exponent; ++i) result *= base;
  return result;
}

// Multiplier for a suffix, 0 when unknown. "" is 1.
Wide SuffixMultiplier(std::string_view suffix) {
  static constexpr struct {
    std::string_view suffix;
    int base;
    int exponent;
  } kSuffixes[] = {
      {"", 10, 0},   {"k", 10, 3},  {"M", 10, 6},  {"G", 10, 9},  {"T", 10, 12},
      {"P", 10, 15}, {"E", 10, 18}, {"Ki", 2, 10}, {"Mi", 2, 20}, {"Gi", 2, 30},
      {"Ti", 2, 40}, {"Pi", 2, 50}, {"Ei", 2, 60},
  };
  for (const auto& entry : kSuffixes) {
    if (entry.suffix == suffix) return PowerOf(entry.base, entry.exponent);
  }
  return 0;
}

}  // namespace

absl::StatusOr<uint64_t> ParseQuantity(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("quantity \"{}\": {}", text, why));
  };
  if (text.empty()) return invalid("empty");
  size_t position = 0;
  if (text[0] == '+') {
    position = 1;
  } else if (text[0] == '-') {
    return invalid("negative");
  }
  Wide numerator = 0;
  int denominator_exponent = 0;  // numerator / 10^denominator_exponent
  int digits = 0;
  bool in_fraction = false;
  bool any_digit = false;
  for (; position < text.size(); ++position) {
    char c = text[position];
    if (c == '.' && !in_fraction) {
      in_fraction = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    any_digit = true;
    if (numerator == 0 && c == '0') {
      if (in_fraction) ++denominator_exponent;
      continue;  // leading zeros carry no precision
    }
    if (++digits > kMaxDigits) return invalid("too many digits");
    numerator = numerator * 10 + static_cast<unsigned>(c - '0');
    if (in_fraction) ++denominator_exponent;
  }
  if (!any_digit) return invalid("does not start with a number");
  if (denominator_exponent > kMaxDigits) return invalid("too many digits");

  std::string_view suffix = text.substr(position);
  Wide multiplier = 0;
  if (suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E') &&
      (suffix[1] == '+' || suffix[1] == '-' || (suffix[1] >= '0' && suffix[1] <= '9'))) {
    // Decimal exponent ("1e3", "15E-1"); "E" and "Ei" are suffixes, handled below.
    size_t exponent_position = 1;
    bool negative = false;
    if (suffix[1] == '+' || suffix[1] == '-') {
      negative = suffix[1] == '-';
      exponent_position = 2;
    }
    if (exponent_position >= suffix.size()) return invalid("bad exponent");
    int exponent = 0;
    for (size_t i = exponent_position; i < suffix.size(); ++i) {
      if (suffix[i] < '0' || suffix[i] > '9') return invalid("bad exponent");
      exponent = exponent * 10 + (suffix[i] - '0');
      if (exponent > kMaxDigits) return invalid("exponent out of range");
    }
    if (negative) {
      denominator_exponent += exponent;
      if (denominator_exponent > 2 * kMaxDigits) return invalid("exponent out of range");
      multiplier = 1;
    } else {
      multiplier = PowerOf(10, exponent);
    }
  } else {
    multiplier = SuffixMultiplier(suffix);
    if (multiplier == 0) {
      return invalid(fmt::format(
          "unknown suffix \"{}\" (want Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P or E)", suffix));
    }
  }

  // Cancel common factors of ten so that numerator * multiplier stays small.
  while (denominator_exponent > 0 && numerator % 10 == 0 && numerator != 0) {
    numerator /= 10;
    --denominator_exponent;
  }
  while (denominator_exponent > 0 && multiplier % 10 == 0) {
    multiplier /= 10;
    --denominator_exponent;
  }
  if (numerator != 0 && multiplier > std::numeric_limits<Wide>::max() / numerator) {
    return invalid("too large");
  }
  Wide product = numerator * multiplier;
  if (denominator_exponent > 0) {
    if (denominator_exponent > 38) return invalid("not a whole number of bytes");
    Wide denominator = PowerOf(10, denominator_exponent);
    if (product % denominator != 0) return invalid("not a whole number of bytes");
    product /= denominator;
  }
  if (product > std::numeric_limits<uint64_t>::max()) return invalid("too large");
  return static_cast<uint64_t>(product);
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  int unit = -1;
  // Move up while the value, rounded to one decimal, would show 1024.0 or more.
  while (unit < 5 && value >= 1023.95) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f %s", value, kUnits[unit]);
  return buffer;
}

}  // namespace modelcache
