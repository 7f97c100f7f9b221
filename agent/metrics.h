#pragma once
// The agent's Prometheus metrics (docs/metrics.md lists them). The HTTP server that exposes
// them, with /healthz and /readyz, is common/metrics_http_server.h.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/metrics_http_server.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
template <typename T>
class Family;
class Histogram;
}  // namespace prometheus

namespace modelcache {

enum class EnsureResult { kHit, kMiss, kError };

// Why Ensure told a client to download the model itself (FAILED_PRECONDITION).
enum class FallbackReason {
  kNodeDisabled,   // modelsCacheStorage.enabled is false on this node
  kModelDisabled,  // the coordinator's caching policy disables the model
  kSourceRefused,  // the coordinator's registry names another source, or none, for the version
  kNoPolicy,       // a coordinator is configured but no caching policy is known yet
};

// Counters and gauges registered on a registry the caller owns (no globals). Thread-safe.
class AgentMetrics {
 public:
  explicit AgentMetrics(prometheus::Registry& registry);

  // modelcache_ensure_requests_total{result="hit|miss|error"}
  void CountEnsure(EnsureResult result);
  // modelcache_ensure_fallbacks_total{reason="node_disabled|model_disabled|source_refused"}
  void CountFallback(FallbackReason reason);
  // modelcache_fills_in_progress
  void SetFillsInProgress(uint64_t fills);

  // One finished fill (published: ok; failed: !ok), by source scheme (http|https|s3|file):
  // modelcache_fills_total{scheme,result="ok|error"}, modelcache_fill_bytes_total{scheme}
  // (bytes fetched from the source), modelcache_fill_duration_seconds{scheme} (a histogram)
  // and modelcache_fill_chunk_retries_total{scheme}.
  void CountFill(std::string_view scheme, bool ok, uint64_t bytes_fetched, double seconds,
                 uint32_t chunk_retries);
  // Origins that ignore Range, for one finished fill:
  // modelcache_fill_ranges_ignored_total{scheme} (range requests answered with HTTP 200 and
  // the whole file) and modelcache_fill_whole_file_streams_total{scheme} (files taken as one
  // stream because the origin ignored Range every time).
  void CountIgnoredRanges(std::string_view scheme, uint32_t ranges_ignored, uint32_t whole_file_streams);

  // A purge the agent executed: modelcache_purges_total{reason} and
  // modelcache_purged_bytes_total{reason}, reason = PurgeReasonLabel(command reason).
  void CountPurge(std::string_view reason, uint64_t bytes_freed);

  // modelcache_live_leases: leases pods hold on cached models now.
  void SetLiveLeases(uint64_t leases);

  // modelcache_coordinator_connected (0/1) and
  // modelcache_coordinator_last_report_timestamp_seconds (0: never).
  void SetCoordinator(bool connected, int64_t last_report_unix_seconds);

  struct CacheSnapshot {
    uint64_t models = 0;
    uint64_t used_bytes = 0;      // bytes of published models
    uint64_t capacity_bytes = 0;  // the quota when set and smaller than the disk, else the disk
    uint64_t free_bytes = 0;      // what a fill may still use (disk or quota, the smaller)
  };
  // modelcache_cache_models, _used_bytes, _capacity_bytes, _free_bytes
  void SetCache(const CacheSnapshot& snapshot);

 private:
  prometheus::Counter* ensure_hit_;
  prometheus::Counter* ensure_miss_;
  prometheus::Counter* ensure_error_;
  prometheus::Counter* fallback_node_;
  prometheus::Counter* fallback_model_;
  prometheus::Counter* fallback_source_;
  prometheus::Counter* fallback_no_policy_;
  prometheus::Gauge* fills_in_progress_;
  prometheus::Family<prometheus::Counter>* fills_;
  prometheus::Family<prometheus::Counter>* fill_bytes_;
  prometheus::Family<prometheus::Histogram>* fill_seconds_;
  prometheus::Family<prometheus::Counter>* chunk_retries_;
  prometheus::Family<prometheus::Counter>* ranges_ignored_;
  prometheus::Family<prometheus::Counter>* whole_file_streams_;
  prometheus::Family<prometheus::Counter>* purges_;
  prometheus::Family<prometheus::Counter>* purged_bytes_;
  prometheus::Gauge* live_leases_;
  prometheus::Gauge* coordinator_connected_;
  prometheus::Gauge* coordinator_last_report_;
  prometheus::Gauge* cache_models_;
  prometheus::Gauge* cache_used_bytes_;
  prometheus::Gauge* cache_capacity_bytes_;
  prometheus::Gauge* cache_free_bytes_;
};

// The bounded label for a purge command's reason ("unused: last access 3d ago" -> "unused"):
// unused, deleted, quota or manual; anything else is "other".
std::string_view PurgeReasonLabel(std::string_view reason);

// Pure: combines the published bytes, the disk's statvfs and the quota (0 = none).
AgentMetrics::CacheSnapshot MakeCacheSnapshot(uint64_t models, uint64_t used_bytes,
                                              uint64_t disk_capacity_bytes,
                                              uint64_t disk_free_bytes, uint64_t quota_bytes);

}  // namespace modelcache
