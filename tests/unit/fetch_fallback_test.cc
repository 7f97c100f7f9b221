#include "cli/fetch_fallback.h"

#include <gtest/gtest.h>

namespace modelcache::cli {
namespace {

TEST(FetchFallback, FullCacheRefusalAndAgentTroubleFallBack) {
  EXPECT_EQ(LocalFallbackReason(absl::ResourceExhaustedError("model m@v1: needs 5 GiB, 1 GiB free")),
            "the cache is full");
  EXPECT_EQ(LocalFallbackReason(absl::FailedPreconditionError("caching disabled")),
            "the agent refused");
  EXPECT_EQ(LocalFallbackReason(absl::UnavailableError("the agent is shutting down")),
            "the agent is unavailable");
  EXPECT_EQ(LocalFallbackReason(absl::CancelledError("the agent is shutting down")),
            "the agent cancelled");
}

TEST(FetchFallback, ErrorsOfTheModelOrItsSourceAreReportedNotRetriedLocally) {
  EXPECT_EQ(LocalFallbackReason(absl::PermissionDeniedError("network.allow")), std::nullopt);
  EXPECT_EQ(LocalFallbackReason(absl::DeadlineExceededError("timeout")), std::nullopt);
  EXPECT_EQ(LocalFallbackReason(absl::NotFoundError("404")), std::nullopt);
  EXPECT_EQ(LocalFallbackReason(absl::InvalidArgumentError("listed size")), std::nullopt);
  EXPECT_EQ(LocalFallbackReason(absl::DataLossError("sha256 mismatch")), std::nullopt);
  EXPECT_EQ(LocalFallbackReason(absl::InternalError("bug")), std::nullopt);
}

}  // namespace
}  // namespace modelcache::cli
