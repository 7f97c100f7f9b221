#include "cli/fetch_fallback.h"

namespace modelcache::cli {

std::optional<std::string> LocalFallbackReason(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kFailedPrecondition:
      return "the agent refused";
    case absl::StatusCode::kResourceExhausted:
      return "the cache is full";
    case absl::StatusCode::kUnavailable:
      return "the agent is unavailable";
    case absl::StatusCode::kCancelled:
      return "the agent cancelled";
    default:
      return std::nullopt;
  }
}

}  // namespace modelcache::cli
