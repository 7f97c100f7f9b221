#include "coordinator/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace modelcache {
namespace {

constexpr std::string_view kPurgeReasons[] = {"unused", "deleted", "quota", "manual", "room", "other"};

prometheus::Gauge& Gauge(prometheus::Registry& registry, const std::string& name,
                         const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Counter& Counter(prometheus::Registry& registry, const std::string& name,
                             const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

std::string_view PurgeReason(std::string_view reason) {
  for (std::string_view known : kPurgeReasons) {
    if (reason == known) return known;
  }
  return "other";
}

}  // namespace

CoordinatorMetrics::CoordinatorMetrics(prometheus::Registry& registry)
    : agents_connected(
          Gauge(registry, "modelcache_coordinator_agents_connected", "Agent streams open now")),
      usage_reports(Counter(registry, "modelcache_coordinator_usage_reports_total",
                            "Usage reports (full, delta, heartbeat) handled")),
      report_seconds(
          prometheus::BuildHistogram()
              .Name("modelcache_coordinator_usage_report_seconds")
              .Help("Time from receiving a usage report to having stored it")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                               0.025, 0.05, 0.1, 0.25, 1, 2.5,
                                                               10})),
      purges_done(Counter(registry, "modelcache_coordinator_command_results_total",
                          "Command answers from agents")),
      bytes_freed(Counter(registry, "modelcache_coordinator_purged_bytes_total",
                          "Bytes agents reported freed by purges")),
      auth_refused(Counter(registry, "modelcache_coordinator_auth_refused_total",
                           "Calls refused for a missing or wrong token or role")),
      purge_decisions_(prometheus::BuildCounter()
                           .Name("modelcache_coordinator_purge_decisions_total")
                           .Help("Purge commands queued for a cached copy, by reason")
                           .Register(registry)),
      policy_seconds_(
          prometheus::BuildHistogram()
              .Name("modelcache_coordinator_policy_loop_duration_seconds")
              .Help("Time of one policy pass (snapshot, plan, queue purges)")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                               1, 5, 10, 30})),
      policy_last_run_(Gauge(registry,
                             "modelcache_coordinator_policy_loop_last_run_timestamp_seconds",
                             "Unix time the last successful policy pass ended (0: none yet)")),
      volumes_(
          Gauge(registry, "modelcache_coordinator_volumes", "Cache volumes the coordinator knows")),
      cached_models_(prometheus::BuildGauge()
                         .Name("modelcache_coordinator_cached_models")
                         .Help("Model versions ready on each volume, as its agents report")
                         .Register(registry)),
      purges_outstanding_(Gauge(registry, "modelcache_coordinator_purge_commands_outstanding",
                                "Purge commands queued or sent, not answered yet")),
      purges_failed_(Gauge(registry, "modelcache_coordinator_purge_commands_failed",
                           "Purge commands an agent answered with an error (in the database)")),
      sqlite_errors_(Counter(registry, "modelcache_coordinator_sqlite_errors_total",
                             "SQLite statements that failed")) {
  for (std::string_view reason : kPurgeReasons) {
    purge_decisions_.Add({{"reason", std::string(reason)}});
  }
}

void CoordinatorMetrics::CountPurgeDecision(std::string_view reason) {
  purge_decisions_.Add({{"reason", std::string(PurgeReason(reason))}}).Increment();
}

void CoordinatorMetrics::ObservePolicyPass(double seconds, bool ok, int64_t now_unix_seconds) {
  policy_seconds_.Observe(seconds);
  if (ok) policy_last_run_.Set(static_cast<double>(now_unix_seconds));
}

void CoordinatorMetrics::SetStoreState(const StoreState& state) {
  volumes_.Set(static_cast<double>(state.volumes));
  purges_outstanding_.Set(static_cast<double>(state.purges_outstanding));
  purges_failed_.Set(static_cast<double>(state.purges_failed));
  std::lock_guard lock(mutex_);
  for (const auto& [volume, models] : state.models_per_volume) {
    cached_models_.Add({{"volume", volume}}).Set(static_cast<double>(models));
    volume_labels_.insert(volume);
  }
  for (auto it = volume_labels_.begin(); it != volume_labels_.end();) {
    if (state.models_per_volume.count(*it) != 0) {
      ++it;
      continue;
    }
    cached_models_.Remove(&cached_models_.Add({{"volume", *it}}));
    it = volume_labels_.erase(it);
  }
  if (state.sqlite_errors > sqlite_errors_seen_) {
    sqlite_errors_.Increment(static_cast<double>(state.sqlite_errors - sqlite_errors_seen_));
    sqlite_errors_seen_ = state.sqlite_errors;
  }
}

}  // namespace modelcache
