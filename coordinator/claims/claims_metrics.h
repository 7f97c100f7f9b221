#pragma once
// The cache claims' Prometheus series (docs/metrics.md), on the coordinator's registry:
//   modelcache_coordinator_cache_namespaces                       namespaces served a copy
//   modelcache_coordinator_cache_claims{phase}                    copies by phase: bound, pending, lost
//   modelcache_coordinator_cache_claims_reconcile_errors_total{reason}
//   modelcache_coordinator_cache_claims_last_reconcile_timestamp_seconds
//   modelcache_coordinator_cache_claims_storage_refused           1 while the source PV is refused
// Called from the reconciler's thread only.
#include <cstdint>
#include <map>
#include <string>

namespace prometheus {
class Counter;
class Gauge;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace modelcache::claims {

struct ClaimsPlan;

class ClaimsMetrics {
 public:
  explicit ClaimsMetrics(prometheus::Registry& registry);

  // After a pass: the plan's view and problems, plus the errors of the actions it ran
  // (by reason: forbidden, unauthenticated, conflict, invalid, unavailable, other).
  void ObservePass(const ClaimsPlan& plan, const std::map<std::string, int>& action_errors, int64_t now_unix_seconds);
  // A pass that could not run (the API server unreachable before the first list).
  void CountError(const std::string& reason);

 private:
  prometheus::Gauge& namespaces_;
  prometheus::Family<prometheus::Gauge>& claims_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Gauge& last_reconcile_;
  prometheus::Gauge& storage_refused_;
};

}  // namespace modelcache::claims
