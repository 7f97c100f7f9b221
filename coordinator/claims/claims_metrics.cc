#include "coordinator/claims/claims_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "coordinator/claims/claims_plan.h"

namespace modelcache::claims {

ClaimsMetrics::ClaimsMetrics(prometheus::Registry& registry)
    : namespaces_(prometheus::BuildGauge()
                      .Name("modelcache_coordinator_cache_namespaces")
                      .Help("Namespaces that get a copy of the cache claim (labelled, or a pod asked)")
                      .Register(registry)
                      .Add({})),
      claims_(prometheus::BuildGauge()
                  .Name("modelcache_coordinator_cache_claims")
                  .Help("Copies of the current cache claim by phase: bound, pending (not bound yet), lost")
                  .Register(registry)),
      errors_(prometheus::BuildCounter()
                  .Name("modelcache_coordinator_cache_claims_reconcile_errors_total")
                  .Help("Reconcile problems and failed API requests, by reason")
                  .Register(registry)),
      last_reconcile_(prometheus::BuildGauge()
                          .Name("modelcache_coordinator_cache_claims_last_reconcile_timestamp_seconds")
                          .Help("Unix time of the last completed reconcile pass")
                          .Register(registry)
                          .Add({})),
      storage_refused_(prometheus::BuildGauge()
                           .Name("modelcache_coordinator_cache_claims_storage_refused")
                           .Help("1 while the source volume fails the storage check (and is not bypassed)")
                           .Register(registry)
                           .Add({})) {
  for (const char* phase : {"bound", "pending", "lost"}) claims_.Add({{"phase", phase}});
}

void ClaimsMetrics::ObservePass(const ClaimsPlan& plan, const std::map<std::string, int>& action_errors,
                                int64_t now_unix_seconds) {
  int served = 0;
  std::map<std::string, int> phases = {{"bound", 0}, {"pending", 0}, {"lost", 0}};
  for (const NamespaceStatus& status : plan.namespaces) {
    if (!status.current) continue;
    ++served;
    if (status.phase == "Bound") {
      ++phases["bound"];
    } else if (status.phase == "Lost") {
      ++phases["lost"];
    } else {
      ++phases["pending"];
    }
  }
  namespaces_.Set(served);
  for (const auto& [phase, count] : phases) claims_.Add({{"phase", phase}}).Set(count);
  for (const auto& [reason, count] : plan.problems) errors_.Add({{"reason", reason}}).Increment(count);
  for (const auto& [reason, count] : action_errors) errors_.Add({{"reason", reason}}).Increment(count);
  storage_refused_.Set(plan.source.reason == "storage_refused" ? 1 : 0);
  last_reconcile_.Set(static_cast<double>(now_unix_seconds));
}

void ClaimsMetrics::CountError(const std::string& reason) { errors_.Add({{"reason", reason}}).Increment(); }

}  // namespace modelcache::claims
