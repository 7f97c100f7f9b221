#include "agent/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>

namespace modelcache {
namespace {

// Every series exists from the start, so dashboards and alerts see 0 rather than nothing.
constexpr std::string_view kSchemes[] = {"http", "https", "s3", "file", "hf", "oci"};
constexpr std::string_view kPurgeReasons[] = {"unused", "deleted", "quota", "manual", "room", "other"};

prometheus::Gauge* AddGauge(prometheus::Registry& registry, const std::string& name,
                            const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Family<prometheus::Counter>* AddCounters(prometheus::Registry& registry,
                                                     const std::string& name,
                                                     const std::string& help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

// A fill takes from well under a second (a small file:// model) to an hour (a large model
// from a slow origin).
prometheus::Histogram::BucketBoundaries FillBuckets() {
  return {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600};
}

std::string Label(std::string_view value) { return std::string(value); }

}  // namespace

AgentMetrics::AgentMetrics(prometheus::Registry& registry) {
  auto& ensure = prometheus::BuildCounter()
                     .Name("modelcache_ensure_requests_total")
                     .Help("Ensure requests by result: hit (already cached), miss (filled), error")
                     .Register(registry);
  ensure_hit_ = &ensure.Add({{"result", "hit"}});
  ensure_miss_ = &ensure.Add({{"result", "miss"}});
  ensure_error_ = &ensure.Add({{"result", "error"}});
  auto& fallbacks = *AddCounters(
      registry, "modelcache_ensure_fallbacks_total",
      "Ensure requests refused with FAILED_PRECONDITION because caching is disabled (on the "
      "node or for the model) or the registry does not name the source asked for: the client "
      "downloads the model itself");
  fallback_node_ = &fallbacks.Add({{"reason", "node_disabled"}});
  fallback_model_ = &fallbacks.Add({{"reason", "model_disabled"}});
  fallback_source_ = &fallbacks.Add({{"reason", "source_refused"}});
  fallback_no_policy_ = &fallbacks.Add({{"reason", "no_policy"}});
  fills_in_progress_ =
      AddGauge(registry, "modelcache_fills_in_progress", "Models being filled right now");
  fills_ = AddCounters(registry, "modelcache_fills_total",
                       "Fills finished, by source scheme and result (ok: published)");
  fill_bytes_ =
      AddCounters(registry, "modelcache_fill_bytes_total",
                  "Bytes fetched from sources by fills (a resumed prefix is not counted)");
  fill_seconds_ = &prometheus::BuildHistogram()
                       .Name("modelcache_fill_duration_seconds")
                       .Help("Time from the start of a fill to its end (published or failed)")
                       .Register(registry);
  chunk_retries_ = AddCounters(registry, "modelcache_fill_chunk_retries_total",
                               "Chunk fetches retried after a retryable error (network, 5xx, "
                               "stall); counted when the fill ends");
  ranges_ignored_ = AddCounters(registry, "modelcache_fill_ranges_ignored_total",
                                "Range requests the origin answered with HTTP 200 and the whole "
                                "file (retried, or the file streamed); counted when the fill ends");
  whole_file_streams_ = AddCounters(registry, "modelcache_fill_whole_file_streams_total",
                                    "Files fetched as one stream because the origin ignored Range "
                                    "every time; counted when the fill ends");
  for (std::string_view scheme : kSchemes) {
    ranges_ignored_->Add({{"scheme", Label(scheme)}});
    whole_file_streams_->Add({{"scheme", Label(scheme)}});
    fills_->Add({{"scheme", Label(scheme)}, {"result", "ok"}});
    fills_->Add({{"scheme", Label(scheme)}, {"result", "error"}});
    fill_bytes_->Add({{"scheme", Label(scheme)}});
    fill_seconds_->Add({{"scheme", Label(scheme)}}, FillBuckets());
    chunk_retries_->Add({{"scheme", Label(scheme)}});
  }
  purges_ = AddCounters(registry, "modelcache_purges_total",
                        "Models this agent removed from the volume, by purge reason");
  purged_bytes_ = AddCounters(registry, "modelcache_purged_bytes_total",
                              "Bytes freed by purges, by purge reason");
  for (std::string_view reason : kPurgeReasons) {
    purges_->Add({{"reason", Label(reason)}});
    purged_bytes_->Add({{"reason", Label(reason)}});
  }
  live_leases_ = AddGauge(registry, "modelcache_live_leases",
                          "Leases pods hold on cached models now (a leased model is not purged)");
  coordinator_connected_ = AddGauge(registry, "modelcache_coordinator_connected",
                                    "1 while the coordinator stream is up, else 0");
  coordinator_last_report_ =
      AddGauge(registry, "modelcache_coordinator_last_report_timestamp_seconds",
               "Unix time of the last usage report sent to the coordinator (0: never)");
  cache_models_ = AddGauge(registry, "modelcache_cache_models", "Published models on the volume");
  cache_used_bytes_ =
      AddGauge(registry, "modelcache_cache_used_bytes", "Bytes of published models");
  cache_capacity_bytes_ = AddGauge(registry, "modelcache_cache_capacity_bytes",
                                   "Cache capacity: the quota if set and smaller, else the disk");
  cache_free_bytes_ = AddGauge(registry, "modelcache_cache_free_bytes",
                               "Bytes a fill may still use (disk or quota, the smaller)");
}

void AgentMetrics::CountEnsure(EnsureResult result) {
  switch (result) {
    case EnsureResult::kHit:
      ensure_hit_->Increment();
      break;
    case EnsureResult::kMiss:
      ensure_miss_->Increment();
      break;
    case EnsureResult::kError:
      ensure_error_->Increment();
      break;
  }
}

void AgentMetrics::CountFallback(FallbackReason reason) {
  switch (reason) {
    case FallbackReason::kNodeDisabled:
      fallback_node_->Increment();
      break;
    case FallbackReason::kModelDisabled:
      fallback_model_->Increment();
      break;
    case FallbackReason::kSourceRefused:
      fallback_source_->Increment();
      break;
    case FallbackReason::kNoPolicy:
      fallback_no_policy_->Increment();
      break;
  }
}

void AgentMetrics::SetFillsInProgress(uint64_t fills) {
  fills_in_progress_->Set(static_cast<double>(fills));
}

void AgentMetrics::CountFill(std::string_view scheme, bool ok, uint64_t bytes_fetched,
                             double seconds, uint32_t chunk_retries) {
  // Only the six schemes reach a fill (MakeSource refuses others), so the label stays bounded;
  // Add returns the existing series for known labels.
  const std::string label(scheme);
  fills_->Add({{"scheme", label}, {"result", ok ? "ok" : "error"}}).Increment();
  fill_bytes_->Add({{"scheme", label}}).Increment(static_cast<double>(bytes_fetched));
  fill_seconds_->Add({{"scheme", label}}, FillBuckets()).Observe(seconds);
  chunk_retries_->Add({{"scheme", label}}).Increment(chunk_retries);
}

void AgentMetrics::CountIgnoredRanges(std::string_view scheme, uint32_t ranges_ignored,
                                      uint32_t whole_file_streams) {
  const std::string label(scheme);
  ranges_ignored_->Add({{"scheme", label}}).Increment(ranges_ignored);
  whole_file_streams_->Add({{"scheme", label}}).Increment(whole_file_streams);
}

void AgentMetrics::CountPurge(std::string_view reason, uint64_t bytes_freed) {
  const std::string label(PurgeReasonLabel(reason));
  purges_->Add({{"reason", label}}).Increment();
  purged_bytes_->Add({{"reason", label}}).Increment(static_cast<double>(bytes_freed));
}

void AgentMetrics::SetLiveLeases(uint64_t leases) {
  live_leases_->Set(static_cast<double>(leases));
}

void AgentMetrics::SetCoordinator(bool connected, int64_t last_report_unix_seconds) {
  coordinator_connected_->Set(connected ? 1 : 0);
  coordinator_last_report_->Set(static_cast<double>(last_report_unix_seconds));
}

void AgentMetrics::SetCache(const CacheSnapshot& snapshot) {
  cache_models_->Set(static_cast<double>(snapshot.models));
  cache_used_bytes_->Set(static_cast<double>(snapshot.used_bytes));
  cache_capacity_bytes_->Set(static_cast<double>(snapshot.capacity_bytes));
  cache_free_bytes_->Set(static_cast<double>(snapshot.free_bytes));
}

std::string_view PurgeReasonLabel(std::string_view reason) {
  std::string_view head = reason.substr(0, reason.find(':'));
  for (std::string_view known : kPurgeReasons) {
    if (head == known) return known;
  }
  return "other";
}

AgentMetrics::CacheSnapshot MakeCacheSnapshot(uint64_t models, uint64_t used_bytes,
                                              uint64_t disk_capacity_bytes,
                                              uint64_t disk_free_bytes, uint64_t quota_bytes) {
  AgentMetrics::CacheSnapshot snapshot;
  snapshot.models = models;
  snapshot.used_bytes = used_bytes;
  snapshot.capacity_bytes = disk_capacity_bytes;
  snapshot.free_bytes = disk_free_bytes;
  if (quota_bytes != 0) {
    snapshot.capacity_bytes = std::min(disk_capacity_bytes, quota_bytes);
    uint64_t quota_left = quota_bytes > used_bytes ? quota_bytes - used_bytes : 0;
    snapshot.free_bytes = std::min(disk_free_bytes, quota_left);
  }
  return snapshot;
}

}  // namespace modelcache
