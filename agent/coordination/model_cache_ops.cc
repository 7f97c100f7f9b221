#include "agent/coordination/model_cache_ops.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "agent/coordination/saved_policy.h"
#include "agent/pod_leases/pod_lease_wants.h"
#include "agent/store/inventory.h"
#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "agent/store/space.h"
#include "common/clock.h"
#include "common/log_fields.h"
#include "common/status_format.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// How long Prefetch waits for the fill to start before answering that it did.
constexpr std::chrono::seconds kPrefetchStartWait{10};

// The first thing a prefetch hears from the cache: a progress (started) or the end.
struct PrefetchStart {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<absl::Status> status;  // guarded by mutex

  void Set(absl::Status result) {
    std::lock_guard lock(mutex);
    if (status) return;
    status = std::move(result);
    changed.notify_all();
  }
};

}  // namespace

ModelCacheOps::ModelCacheOps(ModelCache& cache, CachingPolicyHolder& policy,
                             CacheOpsOptions options)
    : cache_(cache), policy_(policy), options_(std::move(options)) {}

std::vector<v1::ModelUsage> ModelCacheOps::Usage() {
  std::vector<v1::ModelUsage> usage;
  std::map<PodLeaseTable::ModelKey, std::vector<std::string>> leases;
  std::map<PodLeaseTable::ModelKey, Clock::TimePoint> last_leased;
  if (options_.pod_leases != nullptr) {
    leases = options_.pod_leases->HoldersByModel();
    last_leased = options_.pod_leases->LastLeasedByModel();
  }
  for (const v1::CachedModel& model : cache_.List()) {
    v1::ModelUsage& entry = usage.emplace_back();
    entry.set_name(model.name());
    entry.set_version(model.version());
    entry.set_size_bytes(model.size_bytes());
    // A model a pod leases is in use even when nothing reads it: its last access is at least
    // the last time it was leased.
    auto leased_at = last_leased.find({model.name(), model.version()});
    entry.set_last_access_unix_ms(leased_at == last_leased.end()
                                      ? model.last_access_unix_ms()
                                      : std::max(model.last_access_unix_ms(), ToUnixMillis(leased_at->second)));
    auto leased = leases.find({model.name(), model.version()});
    if (leased != leases.end()) {
      entry.set_live_leases(static_cast<uint32_t>(leased->second.size()));
      for (size_t i = 0; i < leased->second.size() && i < pod_leases::kMaxReportedHolders; ++i) {
        entry.add_lease_holders(pod_leases::HolderForPeople(leased->second[i]));
      }
    }
    entry.set_state(v1::ModelUsage::READY);
  }
  return usage;
}

LocalCacheOps::Space ModelCacheOps::VolumeSpace() {
  absl::StatusOr<modelcache::VolumeSpace> space = ReadVolumeSpace(options_.cache_root);
  if (!space.ok()) {
    spdlog::warn("volume space not read {}",
                 LogFields()
                     .Add("path", options_.cache_root.string())
                     .Add("error", space.status())
                     .Add("next", "the coordinator gets 0 capacity and 0 free bytes this time"));
    return Space{};
  }
  return Space{space->capacity_bytes, space->free_bytes};
}

std::vector<LocalCacheOps::ExtraVolumeUsage> ModelCacheOps::ExtraVolumes() {
  std::vector<ExtraVolumeUsage> volumes;
  for (const MaintainedVolume& extra : options_.extra_volumes) {
    ExtraVolumeUsage& volume = volumes.emplace_back();
    volume.volume_id = extra.id;
    absl::StatusOr<modelcache::VolumeSpace> space = ReadVolumeSpace(extra.root);
    if (space.ok()) volume.space = Space{space->capacity_bytes, space->free_bytes};
    const CacheLayout layout(extra.root);
    absl::StatusOr<Inventory> inventory = TakeInventory(layout);
    if (!inventory.ok()) {
      spdlog::warn("extra volume not listed {}",
                   LogFields()
                       .Add("volume", extra.id)
                       .Add("path", extra.root.string())
                       .Add("error", inventory.status())
                       .Add("next", "the coordinator keeps its last report; retried at the next "
                                    "report"));
      continue;
    }
    volume.listed = true;
    for (const InventoryModel& model : inventory->models) {
      v1::ModelUsage& entry = volume.models.emplace_back();
      entry.set_name(model.name);
      entry.set_version(model.version);
      // The manifest's total, as the served volume reports it; the bytes on disk else.
      absl::StatusOr<v1::Manifest> manifest =
          ReadManifest(layout.ManifestPath(model.name, model.version));
      entry.set_size_bytes(manifest.ok() ? manifest->total_bytes() : model.bytes);
      entry.set_last_access_unix_ms(ToUnixMillis(model.last_access));
      entry.set_state(v1::ModelUsage::READY);
    }
  }
  return volumes;
}

absl::StatusOr<uint64_t> ModelCacheOps::Purge(const std::string& name, const std::string& version) {
  if (options_.pod_leases != nullptr && options_.pod_leases->is_leased(name, version)) {
    return absl::FailedPreconditionError(
        fmt::format("model {}@{}: in use on this node ({} live lease(s)): not purged", name,
                    version, options_.pod_leases->LiveLeases(name, version)));
  }
  return cache_.Purge(name, version);
}

absl::Status ModelCacheOps::Prefetch(const std::string& name, const std::string& version,
                                     const std::string& source) {
  if (!options_.caching_enabled) {
    return absl::FailedPreconditionError("model caching is disabled on this node");
  }
  if (!policy_.Allowed(name, version)) {
    return absl::FailedPreconditionError(
        fmt::format("caching disabled for model {}@{} by the coordinator", name, version));
  }
  v1::EnsureRequest request;
  request.set_name(name);
  request.set_version(version);
  request.set_source(source);
  auto start = std::make_shared<PrefetchStart>();
  std::function<void()> on_change = options_.on_change;
  cache_.Ensure(
      request, [start](const v1::EnsureProgress&) { start->Set(absl::OkStatus()); },
      [start, on_change, name, version](absl::StatusOr<v1::EnsureProgress> result) {
        start->Set(result.status());
        if (!result.ok()) {
          spdlog::warn("prefetch failed {}",
                       LogFields()
                           .Add("model", name)
                           .Add("version", version)
                           .Add("error", result.status())
                           .Add("next", "the model stays uncached until the next prefetch or "
                                        "Ensure"));
        } else if (on_change) {
          on_change();
        }
      });
  std::unique_lock lock(start->mutex);
  start->changed.wait_for(lock, kPrefetchStartWait, [&] { return start->status.has_value(); });
  // Still quiet: the fill is under way (no progress yet), which is what a prefetch asks for.
  return start->status.value_or(absl::OkStatus());
}

void ModelCacheOps::ApplyCachingPolicy(const v1::CachingPolicy& policy) {
  policy_.Set(policy);
  if (!options_.policy_file.empty()) {
    absl::Status saved = SavePolicy(options_.policy_file, policy);
    if (!saved.ok()) {
      spdlog::warn("caching policy not saved {}",
                   LogFields()
                       .Add("path", options_.policy_file.string())
                       .Add("error", saved)
                       .Add("next", "applied anyway; a restart starts from the policy saved "
                                    "before"));
    }
  }
  // Tests wait for this line; operators see what the node now refuses and which registered
  // sources it fills from.
  spdlog::info("caching policy from the coordinator: default {}, {} rules, {} sources",
               policy.default_enabled() ? "enabled" : "disabled", policy.rules_size(),
               policy.sources_size());
}

}  // namespace modelcache
