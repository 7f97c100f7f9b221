#include "agent/fill/retry_after.h"

#include <curl/curl.h>

#include <charconv>
#include <cctype>
#include <string>

#include "absl/strings/cord.h"

namespace modelcache {
namespace {

constexpr char kRetryAfterPayload[] = "modelcache/retry-after-seconds";

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

std::optional<int64_t> ParseSeconds(std::string_view text) {
  text = Trim(text);
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// The value of `key` in "k1=v1;k2=v2" or "k1=v1, k2=v2" (an item's parameters).
std::optional<int64_t> Parameter(std::string_view fields, std::string_view key) {
  size_t at = 0;
  while (at < fields.size()) {
    const size_t end = std::min(fields.find_first_of(";,", at), fields.size());
    std::string_view item = Trim(fields.substr(at, end - at));
    at = end + 1;
    const size_t equals = item.find('=');
    if (equals == std::string_view::npos || Trim(item.substr(0, equals)) != key) continue;
    return ParseSeconds(item.substr(equals + 1));
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view retry_after, std::string_view rate_limit,
                                                    int64_t now_unix_seconds) {
  retry_after = Trim(retry_after);
  if (!retry_after.empty()) {
    if (auto seconds = ParseSeconds(retry_after)) return std::chrono::seconds(*seconds);
    const std::string date(retry_after);
    const time_t when = curl_getdate(date.c_str(), nullptr);
    if (when != -1) return std::chrono::seconds(std::max<int64_t>(0, when - now_unix_seconds));
  }
  if (!rate_limit.empty()) {
    // Only an exhausted quota asks for a wait.
    std::optional<int64_t> remaining = Parameter(rate_limit, "r");
    if (!remaining) remaining = Parameter(rate_limit, "remaining");
    std::optional<int64_t> reset = Parameter(rate_limit, "t");
    if (!reset) reset = Parameter(rate_limit, "reset");
    if (reset && (!remaining || *remaining == 0)) return std::chrono::seconds(*reset);
  }
  return std::nullopt;
}

void SetRetryAfter(absl::Status& status, std::chrono::seconds wait) {
  status.SetPayload(kRetryAfterPayload, absl::Cord(std::to_string(wait.count())));
}

std::optional<std::chrono::seconds> RetryAfterOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRetryAfterPayload);
  if (!payload) return std::nullopt;
  std::optional<int64_t> seconds = ParseSeconds(std::string(*payload));
  if (!seconds) return std::nullopt;
  return std::chrono::seconds(*seconds);
}

}  // namespace modelcache
