#pragma once
// The coordinator's Prometheus metrics (docs/metrics.md lists them), on a registry the server
// owns. The agent-stream series are plain references that the stream handler updates; the
// rest go through the methods below. Thread-safe.
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace modelcache {

class CoordinatorMetrics {
 public:
  explicit CoordinatorMetrics(prometheus::Registry& registry);

  // ---- agent streams
  prometheus::Gauge& agents_connected;    // modelcache_coordinator_agents_connected
  prometheus::Counter& usage_reports;     // modelcache_coordinator_usage_reports_total
  prometheus::Histogram& report_seconds;  // modelcache_coordinator_usage_report_seconds
  prometheus::Counter& purges_done;       // modelcache_coordinator_command_results_total
  prometheus::Counter& bytes_freed;       // modelcache_coordinator_purged_bytes_total
  prometheus::Counter& auth_refused;      // modelcache_coordinator_auth_refused_total

  // modelcache_coordinator_purge_decisions_total{reason}: a purge command was queued for a
  // copy; reason is unused, deleted, quota or manual (anything else counts as "other").
  void CountPurgeDecision(std::string_view reason);

  // One policy pass: modelcache_coordinator_policy_loop_duration_seconds, and when it
  // succeeded modelcache_coordinator_policy_loop_last_run_timestamp_seconds.
  void ObservePolicyPass(double seconds, bool ok, int64_t now_unix_seconds);

  // What the database says now (read before each scrape):
  //   modelcache_coordinator_volumes, modelcache_coordinator_cached_models{volume},
  //   modelcache_coordinator_purge_commands_outstanding, _purge_commands_failed,
  //   modelcache_coordinator_sqlite_errors_total (from the store's running count).
  struct StoreState {
    uint64_t volumes = 0;
    std::map<std::string, uint64_t> models_per_volume;  // volumes absent here lose their series
    uint64_t purges_outstanding = 0;
    uint64_t purges_failed = 0;
    uint64_t sqlite_errors = 0;  // since start; the counter follows it
  };
  void SetStoreState(const StoreState& state);

 private:
  prometheus::Family<prometheus::Counter>& purge_decisions_;
  prometheus::Histogram& policy_seconds_;
  prometheus::Gauge& policy_last_run_;
  prometheus::Gauge& volumes_;
  prometheus::Family<prometheus::Gauge>& cached_models_;
  prometheus::Gauge& purges_outstanding_;
  prometheus::Gauge& purges_failed_;
  prometheus::Counter& sqlite_errors_;

  std::mutex mutex_;  // guards the two below (scrapes may run concurrently)
  std::set<std::string> volume_labels_;
  uint64_t sqlite_errors_seen_ = 0;
};

}  // namespace modelcache
