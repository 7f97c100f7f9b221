#include "agent/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

using ::testing::HasSubstr;


TEST(CacheSnapshot, WithoutQuotaTheDiskIsTheLimit) {
  AgentMetrics::CacheSnapshot snapshot = MakeCacheSnapshot(3, 700, 10'000, 4'000, 0);
  EXPECT_EQ(snapshot.models, 3u);
  EXPECT_EQ(snapshot.used_bytes, 700u);
  EXPECT_EQ(snapshot.capacity_bytes, 10'000u);
  EXPECT_EQ(snapshot.free_bytes, 4'000u);
}

TEST(CacheSnapshot, ASmallerQuotaLimitsCapacityAndFreeBytes) {
  AgentMetrics::CacheSnapshot snapshot = MakeCacheSnapshot(1, 700, 10'000, 4'000, 1'000);
  EXPECT_EQ(snapshot.capacity_bytes, 1'000u);
  EXPECT_EQ(snapshot.free_bytes, 300u);
}

TEST(CacheSnapshot, AnOverfullQuotaLeavesNothingFree) {
  EXPECT_EQ(MakeCacheSnapshot(1, 2'000, 10'000, 4'000, 1'000).free_bytes, 0u);
}

TEST(AgentMetrics, ExportsCountersAndGaugesByName) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  metrics.CountEnsure(EnsureResult::kHit);
  metrics.CountEnsure(EnsureResult::kHit);
  metrics.CountEnsure(EnsureResult::kError);
  metrics.SetFillsInProgress(2);
  metrics.SetCache(MakeCacheSnapshot(5, 1234, 10'000, 4'000, 0));
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_requests_total{result=\"hit\"} 2"));
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_requests_total{result=\"miss\"} 0"));
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_requests_total{result=\"error\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_fills_in_progress 2"));
  EXPECT_THAT(text, HasSubstr("modelcache_cache_models 5"));
  EXPECT_THAT(text, HasSubstr("modelcache_cache_used_bytes 1234"));
  EXPECT_THAT(text, HasSubstr("modelcache_cache_capacity_bytes 10000"));
  EXPECT_THAT(text, HasSubstr("modelcache_cache_free_bytes 4000"));
}

std::string Scrape(const prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

TEST(AgentMetrics, EverySchemeAndReasonIsExportedAtZeroFromTheStart) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  std::string text = Scrape(registry);
  for (const char* scheme : {"http", "https", "s3", "file"}) {
    EXPECT_THAT(text, HasSubstr(fmt::format("modelcache_fill_bytes_total{{scheme=\"{}\"}} 0", scheme)));
    EXPECT_THAT(text, HasSubstr(fmt::format(
                          "modelcache_fill_duration_seconds_count{{scheme=\"{}\"}} 0", scheme)));
  }
  for (const char* reason : {"unused", "deleted", "quota", "manual", "room"}) {
    EXPECT_THAT(text, HasSubstr(fmt::format("modelcache_purges_total{{reason=\"{}\"}} 0", reason)));
  }
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_connected 0"));
  EXPECT_THAT(text, HasSubstr("modelcache_live_leases 0"));
}

TEST(AgentMetrics, AFinishedFillCountsBytesDurationRetriesAndResultByScheme) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  metrics.CountFill("s3", /*ok=*/true, 3000, 12.5, 2);
  metrics.CountFill("s3", /*ok=*/false, 500, 0.25, 4);
  metrics.CountFill("file", /*ok=*/true, 70, 0.01, 0);
  std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("modelcache_fill_bytes_total{scheme=\"s3\"} 3500"));
  EXPECT_THAT(text, HasSubstr("modelcache_fill_bytes_total{scheme=\"file\"} 70"));
  EXPECT_THAT(text, HasSubstr("modelcache_fill_bytes_total{scheme=\"http\"} 0"));
  EXPECT_THAT(text, HasSubstr("modelcache_fills_total{result=\"ok\",scheme=\"s3\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_fills_total{result=\"error\",scheme=\"s3\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_fill_chunk_retries_total{scheme=\"s3\"} 6"));
  EXPECT_THAT(text, HasSubstr("modelcache_fill_duration_seconds_count{scheme=\"s3\"} 2"));
  EXPECT_THAT(text, HasSubstr("modelcache_fill_duration_seconds_sum{scheme=\"s3\"} 12.75"));
  // 12.5 s lands above the 10 s bucket, 0.25 s in the first one.
  EXPECT_THAT(text, HasSubstr("modelcache_fill_duration_seconds_bucket{scheme=\"s3\",le=\"10\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_fill_duration_seconds_bucket{scheme=\"s3\",le=\"30\"} 2"));
}

TEST(AgentMetrics, IgnoredRangesAndWholeFileStreamsAreCountedByScheme) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  EXPECT_THAT(Scrape(registry), HasSubstr("modelcache_fill_ranges_ignored_total{scheme=\"https\"} 0"));
  metrics.CountIgnoredRanges("https", 5, 0);
  metrics.CountIgnoredRanges("https", 3, 1);
  std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("modelcache_fill_ranges_ignored_total{scheme=\"https\"} 8"));
  EXPECT_THAT(text, HasSubstr("modelcache_fill_whole_file_streams_total{scheme=\"https\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_fill_whole_file_streams_total{scheme=\"http\"} 0"));
}

TEST(AgentMetrics, FallbacksAreCountedByReason) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  metrics.CountFallback(FallbackReason::kModelDisabled);
  metrics.CountFallback(FallbackReason::kModelDisabled);
  metrics.CountFallback(FallbackReason::kNodeDisabled);
  metrics.CountFallback(FallbackReason::kSourceRefused);
  std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_fallbacks_total{reason=\"model_disabled\"} 2"));
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_fallbacks_total{reason=\"node_disabled\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_fallbacks_total{reason=\"source_refused\"} 1"));
}

TEST(AgentMetrics, PurgesCountModelsAndBytesByTheCommandsReason) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  metrics.CountPurge("unused: last access 3d ago, older than 1d", 1000);
  metrics.CountPurge("unused: last access 9d ago", 24);
  metrics.CountPurge("manual: requested by an admin", 5);
  metrics.CountPurge("something new", 7);
  std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("modelcache_purges_total{reason=\"unused\"} 2"));
  EXPECT_THAT(text, HasSubstr("modelcache_purged_bytes_total{reason=\"unused\"} 1024"));
  EXPECT_THAT(text, HasSubstr("modelcache_purges_total{reason=\"manual\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_purged_bytes_total{reason=\"other\"} 7"));
  EXPECT_THAT(text, HasSubstr("modelcache_purges_total{reason=\"quota\"} 0"));
}

TEST(PurgeReasonLabel, KeepsKnownReasonsAndBoundsTheRest) {
  EXPECT_EQ(PurgeReasonLabel("quota: volume above 90%"), "quota");
  EXPECT_EQ(PurgeReasonLabel("deleted"), "deleted");
  EXPECT_EQ(PurgeReasonLabel("room: for m@v1 (12 MiB short), least recently used"), "room");
  EXPECT_EQ(PurgeReasonLabel("unusedish: x"), "other");
  EXPECT_EQ(PurgeReasonLabel(""), "other");
}

TEST(AgentMetrics, CoordinatorStateAndLeasesAreGauges) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  metrics.SetCoordinator(true, 1234);
  metrics.SetLiveLeases(3);
  std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_connected 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_last_report_timestamp_seconds 1234"));
  EXPECT_THAT(text, HasSubstr("modelcache_live_leases 3"));
  metrics.SetCoordinator(false, 1234);
  EXPECT_THAT(Scrape(registry), HasSubstr("modelcache_coordinator_connected 0"));
}

}  // namespace
}  // namespace modelcache
