#pragma once
// Volume maintenance behind `modelcachectl cleanup | verify | repair | migrate | volumes`:
// the store building blocks (inventory, verify, quarantine, migrate) wired to the agent's
// ModelCache so that its index never answers with a model that was moved away.
//
// Every method blocks for as long as the work takes (hashing, copying, a re-fetch): call it
// from a gRPC thread, never from the event loop. One operation runs at a time; the others
// wait for it.
#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/source/source.h"
#include "agent/store/verify.h"
#include "common/clock.h"
#include "modelcache/v1/maintenance.pb.h"

namespace modelcache {

class ModelCache;

struct MaintainedVolume {
  std::string id;  // the volume id file's id
  std::filesystem::path root;
};

struct MaintenanceOptions {
  MaintainedVolume serving;              // the cache that `cache` fills
  std::vector<MaintainedVolume> extra;   // extraVolumes
  SourceOptions sources;                 // for repair's listing of the model's source
  int migrate_parallelism = 4;
  // Whether a pod holds a live lease on the model (the lead wires the lease table here).
  // Unset: nothing is leased. Called from the maintenance thread.
  std::function<bool(std::string_view name, std::string_view version)> is_leased;
  // The models with a live lease held on ANY node of the volume (the agent asks the
  // coordinator; agent/coordination/volume_client.h). Set, a cleanup of models or staging
  // without --force keeps them too, and refuses (FAILED_PRECONDITION) when it cannot be asked.
  // Unset (no coordinator): only `is_leased` counts. Called from the maintenance thread.
  std::function<absl::StatusOr<std::set<std::pair<std::string, std::string>>>(
      std::string_view volume_id)>
      volume_leases;
  // Called after a cleanup or a migration changed a volume (the lead asks the coordinator
  // client to report now, so that `usage` shows it without waiting for a heartbeat). Unset:
  // nothing. Called from the maintenance thread.
  std::function<void()> on_volume_changed;
};

class Maintenance {
 public:
  // `cache` and `clock` must outlive this object.
  Maintenance(ModelCache& cache, const Clock& clock, MaintenanceOptions options);

  v1::VolumesResponse Volumes();

  // NOT_FOUND for an unknown volume id; INVALID_ARGUMENT for a bad model selector. Models on
  // the serving volume are removed through ModelCache::Purge (a fill in progress keeps its
  // model: it is reported in `problems`).
  absl::StatusOr<v1::CleanupResponse> Cleanup(const v1::CleanupRequest& request);

  // Per-model results; NOT_FOUND when a named model is not published.
  absl::StatusOr<v1::VerifyResponse> Verify(const v1::VerifyRequest& request);

  // A published model is verified first (clean: nothing to do) and quarantined when damaged;
  // then the newest quarantined copy is checked again, its good files are hard-linked (or
  // copied) into staging with a journal that marks them complete (PlanRepair), and the
  // cache's own fill fetches the rest, verifies and publishes. When the model's staging
  // folder exists already (a fill in progress, or a repair stopped by origin trouble), the
  // repair joins or resumes that fill instead. NOT_FOUND when there is nothing to repair from.
  absl::StatusOr<v1::RepairResponse> Repair(const v1::RepairRequest& request);

  // One background pass over the serving volume at `rate_limit`: like Verify of every model,
  // but holding the one-operation lock per model only, so that CLI calls are not held off for
  // the whole pass. Returns the models quarantined. CANCELLED once *cancel is true.
  absl::StatusOr<int> Scrub(RateLimit rate_limit, const std::atomic<bool>* cancel);

  // Per-model results (an error on one model does not stop the others). NOT_FOUND for an
  // unknown volume id, INVALID_ARGUMENT when both ids are the same volume.
  absl::StatusOr<v1::MigrateResponse> Migrate(const v1::MigrateRequest& request);

 private:
  absl::StatusOr<MaintainedVolume> FindVolume(std::string_view id) const;
  bool Serving(const MaintainedVolume& volume) const;
  // Puts a model published on the serving volume behind the index's back into the index.
  // Re-hashes one published model; a damaged one is quarantined and dropped from the index.
  v1::ModelVerification VerifyOne(const std::string& name, const std::string& version,
                                  bool quarantine, RateLimit rate_limit,
                                  const std::atomic<bool>* cancel);
  absl::Status Adopt(std::string_view name, std::string_view version, std::string_view source);

  ModelCache& cache_;
  const Clock& clock_;
  const MaintenanceOptions options_;
  std::mutex running_;  // one operation at a time
};

}  // namespace modelcache
