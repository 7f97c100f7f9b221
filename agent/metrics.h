#pragma once
// The agent's Prometheus metrics and the small HTTP server that exposes them.
//
// prometheus-cpp 1.0's Exposer has no way to add other handlers (its CivetServer is private
// and civetweb's callbacks carry no user data), so MetricsHttpServer runs its own civetweb
// server (the library prometheus-cpp itself uses) with three handlers:
//   /metrics  the registry in Prometheus text format
//   /healthz  200 while the process serves HTTP
//   /readyz   200 when `ready()` says so, else 503
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace modelcache {

enum class EnsureResult { kHit, kMiss, kError };

// Counters and gauges registered on a registry the caller owns (no globals). Thread-safe.
class AgentMetrics {
 public:
  explicit AgentMetrics(prometheus::Registry& registry);

  // modelcache_ensure_requests_total{result="hit|miss|error"}
  void CountEnsure(EnsureResult result);
  // modelcache_fills_in_progress
  void SetFillsInProgress(uint64_t fills);

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
  prometheus::Gauge* fills_in_progress_;
  prometheus::Gauge* cache_models_;
  prometheus::Gauge* cache_used_bytes_;
  prometheus::Gauge* cache_capacity_bytes_;
  prometheus::Gauge* cache_free_bytes_;
};

// Pure: combines the published bytes, the disk's statvfs and the quota (0 = none).
AgentMetrics::CacheSnapshot MakeCacheSnapshot(uint64_t models, uint64_t used_bytes,
                                              uint64_t disk_capacity_bytes,
                                              uint64_t disk_free_bytes, uint64_t quota_bytes);

class MetricsHttpServer {
 public:
  // Listens on `address` ("host:port"; port 0 picks a free one). `registry` and `ready` must
  // outlive the server. UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, const prometheus::Registry& registry,
      std::function<bool()> ready);
  ~MetricsHttpServer();  // stops serving

  int Port() const { return port_; }

 private:
  struct State;
  explicit MetricsHttpServer(std::unique_ptr<State> state, int port);
  std::unique_ptr<State> state_;
  int port_;
};

}  // namespace modelcache
