#include "agent/maintenance/maintenance.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <memory>
#include <set>

#include "agent/maintenance/repair_plan.h"
#include "agent/model_cache.h"
#include "agent/store/inventory.h"
#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "agent/store/migrate.h"
#include "agent/store/space.h"
#include "agent/store/trash.h"
#include "agent/store/verify.h"
#include "common/fs.h"
#include "common/log_fields.h"
#include "common/names.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// "NAME" (version "") or "NAME@VERSION".
absl::StatusOr<NameAndVersion> ParseSelector(std::string_view text) {
  size_t at = text.find('@');
  NameAndVersion selected(std::string(text.substr(0, at)),
                          at == std::string_view::npos ? "" : std::string(text.substr(at + 1)));
  absl::Status valid = ValidateModelName(selected.first);
  if (valid.ok() && at != std::string_view::npos) valid = ValidateModelVersion(selected.second);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("model '{}': want NAME or NAME@VERSION: {}", text, valid.message()));
  }
  return selected;
}

v1::VolumeSpaceInfo ToProto(const VolumeSpace& space) {
  v1::VolumeSpaceInfo info;
  info.set_capacity_bytes(space.capacity_bytes);
  info.set_free_bytes(space.free_bytes);
  return info;
}

void AddEntries(const Inventory& inventory, const CleanupPlan& plan,
                v1::CleanupResponse& response) {
  std::set<std::string> selected;
  for (const CleanupItem& item : plan.remove) selected.insert(item.path);
  auto add = [&](std::string kind, std::string path, uint64_t bytes) {
    v1::CleanupEntry* entry = response.add_entries();
    entry->set_selected(selected.count(path) > 0);
    entry->set_kind(std::move(kind));
    entry->set_path(std::move(path));
    entry->set_bytes(bytes);
  };
  for (const InventoryModel& model : inventory.models) {
    add("model", fmt::format("models/{}/{}", model.name, model.version), model.bytes);
  }
  for (const InventoryStaging& staging : inventory.staging) {
    add("staging", "staging/" + staging.folder, staging.bytes);
  }
  for (const InventoryEntry& entry : inventory.trash) add("trash", entry.path, entry.bytes);
  for (const InventoryEntry& entry : inventory.quarantine) {
    add("quarantine", entry.path, entry.bytes);
  }
  for (const InventoryEntry& entry : inventory.unknown) add("unknown", entry.path, entry.bytes);
  for (v1::CleanupEntry& entry : *response.mutable_entries()) {
    for (const std::string& kept : plan.kept) {
      if (kept.rfind(entry.path() + ": ", 0) == 0) entry.set_note(kept.substr(entry.path().size() + 2));
    }
  }
}

// Ensure on the cache, waited for. Runs on the calling (maintenance) thread.
absl::StatusOr<v1::EnsureProgress> EnsureAndWait(ModelCache& cache, std::string_view name,
                                                 std::string_view version,
                                                 std::string_view source) {
  v1::EnsureRequest request;
  request.set_name(std::string(name));
  request.set_version(std::string(version));
  request.set_source(std::string(source));
  auto done = std::make_shared<std::promise<absl::StatusOr<v1::EnsureProgress>>>();
  std::future<absl::StatusOr<v1::EnsureProgress>> result = done->get_future();
  cache.Ensure(request, nullptr, [done](absl::StatusOr<v1::EnsureProgress> outcome) {
    done->set_value(std::move(outcome));
  });
  return result.get();
}

// The newest quarantine/<name>@<version>-<ms>[.n] folder, or NOT_FOUND.
absl::StatusOr<std::filesystem::path> NewestQuarantine(const CacheLayout& layout,
                                                       std::string_view name,
                                                       std::string_view version) {
  ASSIGN_OR_RETURN(std::vector<std::string> entries, ListDirectory(layout.QuarantineDir()));
  std::string prefix = fmt::format("{}@{}-", name, version);
  std::optional<std::pair<uint64_t, std::string>> newest;
  for (const std::string& entry : entries) {
    if (entry.rfind(prefix, 0) != 0) continue;
    std::string rest = entry.substr(prefix.size());
    std::string digits = rest.substr(0, rest.find('.'));
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    std::pair<uint64_t, std::string> candidate(std::stoull(digits), entry);
    if (!newest || candidate > *newest) newest = candidate;
  }
  if (!newest) {
    return absl::NotFoundError(fmt::format(
        "model {}@{}: neither published nor quarantined on {}: nothing to repair (use "
        "`modelcachectl fetch` to cache it)",
        name, version, layout.Root().string()));
  }
  return layout.QuarantineDir() / newest->second;
}

// Hard link (same volume, no bytes copied), else a plain copy.
absl::Status LinkOrCopy(const std::filesystem::path& from, const std::filesystem::path& to) {
  RETURN_IF_ERROR(CreateDirectories(to.parent_path()));
  if (::link(from.c_str(), to.c_str()) == 0) return absl::OkStatus();
  std::error_code error;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, error);
  if (error) {
    return absl::InternalError(
        fmt::format("copy {} to {}: {}", from.string(), to.string(), error.message()));
  }
  return absl::OkStatus();
}

using LeasedFn = std::function<bool(std::string_view name, std::string_view version)>;
using VolumeLeasesFn = decltype(MaintenanceOptions::volume_leases);

// What `request` asks to clean on a volume with `inventory`, in PlanCleanup's terms. Models
// a pod holds (`is_leased`; their staging folders too) are marked so the plan keeps them.
absl::StatusOr<CleanupRequest> WantedCleanup(const v1::CleanupRequest& request,
                                             const Inventory& inventory, const LeasedFn& is_leased,
                                             Clock::TimePoint now) {
  CleanupRequest wanted;
  wanted.trash = request.trash();
  wanted.quarantine = request.quarantine();
  wanted.unknown = request.unknown();
  wanted.force = request.force();
  wanted.now = now;
  if (request.staging()) {
    wanted.staging_older_than =
        std::chrono::seconds(std::max<int64_t>(0, request.staging_older_than_seconds()));
  }
  for (const std::string& text : request.models()) {
    ASSIGN_OR_RETURN(NameAndVersion selected, ParseSelector(text));
    wanted.models.push_back(std::move(selected));
  }
  if (request.all_models()) {
    for (const InventoryModel& model : inventory.models) {
      wanted.models.emplace_back(model.name, model.version);
    }
  }
  if (!is_leased) return wanted;
  for (const InventoryModel& model : inventory.models) {
    if (is_leased(model.name, model.version)) wanted.leased.emplace(model.name, model.version);
  }
  for (const InventoryStaging& staging : inventory.staging) {
    size_t at = staging.folder.find('@');
    if (at == std::string::npos) continue;
    std::string name = staging.folder.substr(0, at);
    std::string version = staging.folder.substr(at + 1);
    if (is_leased(name, version)) wanted.leased.emplace(name, version);
  }
  return wanted;
}

// Leases of pods on the other nodes of the volume: only the coordinator knows them. Asked only
// when the cleanup may remove models or staging and is not forced; no answer, no cleanup.
absl::Status AddVolumeLeases(const std::string& volume_id, const Inventory& inventory,
                             const VolumeLeasesFn& volume_leases, CleanupRequest& wanted) {
  if (!volume_leases || wanted.force ||
      (wanted.models.empty() && !wanted.staging_older_than.has_value())) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::set<std::pair<std::string, std::string>>> leased = volume_leases(volume_id);
  if (!leased.ok()) {
    return absl::FailedPreconditionError(fmt::format(
        "cleanup of volume {}: cannot ask the coordinator for the leases pods on other nodes "
        "hold ({}): nothing removed; retry once it answers, or use --force",
        volume_id, leased.status().message()));
  }
  for (const InventoryModel& model : inventory.models) {
    if (leased->count({model.name, model.version}) > 0) {
      wanted.leased.emplace(model.name, model.version);
    }
  }
  for (const InventoryStaging& staging : inventory.staging) {
    size_t at = staging.folder.find('@');
    if (at == std::string::npos) continue;
    std::pair<std::string, std::string> key{staging.folder.substr(0, at),
                                            staging.folder.substr(at + 1)};
    if (leased->count(key) > 0) wanted.leased.insert(key);
  }
  return absl::OkStatus();
}

// Carries `plan` out and records what was removed, what failed and the bytes freed. On the
// volume the cache serves (`cache` set), models go through the cache: its index must forget a
// model before its folder goes, and Purge does both on the loop, so no Ensure answers with a
// folder that is being deleted.
absl::Status CarryOutCleanup(const CacheLayout& layout, const CleanupPlan& plan, ModelCache* cache,
                             v1::CleanupResponse& response) {
  CleanupPlan rest = plan;
  std::vector<CleanupItem> models;
  if (cache != nullptr) {
    rest.remove.clear();
    for (const CleanupItem& item : plan.remove) {
      (item.kind == CleanupItem::Kind::kModel ? models : rest.remove).push_back(item);
    }
  }
  // The rest first: a purge empties trash/, which would hide what the trash items freed.
  ASSIGN_OR_RETURN(CleanupResult result, ExecuteCleanup(layout, rest));
  for (const std::string& removed : result.removed) response.add_removed(removed);
  for (const std::string& problem : result.problems) response.add_problems(problem);
  response.set_freed_bytes(result.bytes_freed);
  for (const CleanupItem& item : models) {
    std::filesystem::path relative(item.path);  // models/<name>/<version>
    std::string name = relative.parent_path().filename().string();
    std::string version = relative.filename().string();
    absl::StatusOr<uint64_t> freed = cache->Purge(name, version);
    if (!freed.ok()) {
      response.add_problems(fmt::format("{}: {}", item.path, freed.status().message()));
      continue;
    }
    response.add_removed(item.path);
    response.set_freed_bytes(response.freed_bytes() + item.bytes);
  }
  return absl::OkStatus();
}

// The newest quarantined copy of a model, its manifest, and which of its files are bad.
struct DamagedCopy {
  std::filesystem::path folder;
  v1::Manifest manifest;
  std::set<std::string> bad;
};

absl::StatusOr<DamagedCopy> ReadDamagedCopy(const CacheLayout& layout, const std::string& name,
                                            const std::string& version,
                                            v1::RepairResponse& response) {
  DamagedCopy copy;
  ASSIGN_OR_RETURN(copy.folder, NewestQuarantine(layout, name, version));
  response.set_from_quarantine(copy.folder.lexically_relative(layout.Root()).string());
  ASSIGN_OR_RETURN(copy.manifest, ReadManifest(copy.folder / kManifestFileName));
  ASSIGN_OR_RETURN(VerifyReport report, VerifyTree(copy.folder, copy.manifest, RateLimit{}));
  for (const BadFile& file : report.bad_files) {
    copy.bad.insert(file.path);
    v1::BadFileInfo* info = response.add_bad_files();
    info->set_path(file.path);
    info->set_problem(file.problem);
  }
  return copy;
}

// Lays the repair's staging out: the good files of `damaged` linked (or copied) into the
// staging tree and a journal that names them done, so the fill fetches only the rest. When
// the staging folder exists, a fill of the model is running (or an earlier repair stopped on
// origin trouble and left its journal): the repair's Ensure joins that fill or resumes from
// its journal instead, and nothing is laid out. mkdir is what claims the folder.
absl::Status PrepareRepairStaging(const CacheLayout& layout, const std::string& name,
                                  const std::string& version,
                                  const std::filesystem::path& damaged, const RepairPlan& plan) {
  RETURN_IF_ERROR(layout.CreateDirectories());
  std::filesystem::path staging = layout.StagingFor(name, version);
  if (::mkdir(staging.c_str(), 0755) != 0) {
    if (errno != EEXIST) return ErrnoStatus(errno, "create", staging);
    spdlog::info("repair joins or resumes the fill in staging {}", LogFields()
                                                                     .Add("model", name)
                                                                     .Add("version", version)
                                                                     .Add("path", staging.string()));
    return absl::OkStatus();
  }
  absl::Status prepared = [&]() -> absl::Status {
    std::filesystem::path tree = layout.StagingTree(name, version);
    RETURN_IF_ERROR(CreateDirectories(tree));
    for (const std::string& path : plan.keep) {
      RETURN_IF_ERROR(LinkOrCopy(damaged / path, tree / path));
    }
    return WriteJournal(layout.JournalPath(name, version), plan.journal);
  }();
  if (!prepared.ok()) {
    absl::StatusOr<std::filesystem::path> trashed = MoveToTrash(layout, staging);
    if (trashed.ok()) (void)RemoveTree(*trashed);
  }
  return prepared;
}

}  // namespace

Maintenance::Maintenance(ModelCache& cache, const Clock& clock, MaintenanceOptions options)
    : cache_(cache), clock_(clock), options_(std::move(options)) {}

absl::StatusOr<MaintainedVolume> Maintenance::FindVolume(std::string_view id) const {
  if (options_.serving.id == id) return options_.serving;
  for (const MaintainedVolume& volume : options_.extra) {
    if (volume.id == id) return volume;
  }
  std::string mounted = options_.serving.id + " (" + options_.serving.root.string() + ")";
  for (const MaintainedVolume& volume : options_.extra) {
    mounted += ", " + volume.id + " (" + volume.root.string() + ")";
  }
  return absl::NotFoundError(fmt::format(
      "volume {} is not mounted by this agent (it mounts {}): run this on a node whose agent "
      "mounts it",
      id, mounted));
}

bool Maintenance::Serving(const MaintainedVolume& volume) const {
  return volume.id == options_.serving.id;
}

absl::Status Maintenance::Adopt(std::string_view name, std::string_view version,
                                std::string_view source) {
  // The fill finds the published manifest and hands it to the index without fetching.
  return EnsureAndWait(cache_, name, version, source).status();
}

v1::VolumesResponse Maintenance::Volumes() {
  v1::VolumesResponse response;
  auto add = [&response](const MaintainedVolume& volume, bool serving) {
    v1::MountedVolume* mounted = response.add_volumes();
    mounted->set_volume_id(volume.id);
    mounted->set_path(volume.root.string());
    mounted->set_serving(serving);
    absl::StatusOr<VolumeSpace> space = ReadVolumeSpace(volume.root);
    if (space.ok()) *mounted->mutable_space() = ToProto(*space);
  };
  add(options_.serving, true);
  for (const MaintainedVolume& volume : options_.extra) add(volume, false);
  return response;
}

absl::StatusOr<v1::CleanupResponse> Maintenance::Cleanup(const v1::CleanupRequest& request) {
  std::lock_guard lock(running_);
  ASSIGN_OR_RETURN(MaintainedVolume volume, FindVolume(request.volume_id()));
  CacheLayout layout(volume.root);
  ASSIGN_OR_RETURN(Inventory inventory, TakeInventory(layout));
  ASSIGN_OR_RETURN(CleanupRequest wanted,
                   WantedCleanup(request, inventory, options_.is_leased, clock_.Now()));
  RETURN_IF_ERROR(AddVolumeLeases(volume.id, inventory, options_.volume_leases, wanted));
  CleanupPlan plan = PlanCleanup(inventory, wanted);

  v1::CleanupResponse response;
  response.set_volume_id(volume.id);
  response.set_path(volume.root.string());
  response.set_dry_run(request.dry_run());
  AddEntries(inventory, plan, response);
  for (const std::string& kept : plan.kept) response.add_kept(kept);
  response.set_planned_bytes(plan.bytes);
  ASSIGN_OR_RETURN(VolumeSpace before, ReadVolumeSpace(volume.root));
  *response.mutable_before() = ToProto(before);
  if (request.dry_run()) {
    *response.mutable_after() = ToProto(before);
    return response;
  }

  RETURN_IF_ERROR(CarryOutCleanup(layout, plan, Serving(volume) ? &cache_ : nullptr, response));
  ASSIGN_OR_RETURN(VolumeSpace after, ReadVolumeSpace(volume.root));
  *response.mutable_after() = ToProto(after);
  spdlog::info("cleanup done {}", LogFields()
                                     .Add("volume_id", volume.id)
                                     .Add("volume", volume.root.string())
                                     .Add("removed", response.removed_size())
                                     .Add("bytes", response.freed_bytes())
                                     .Add("problems", response.problems_size()));
  if (options_.on_volume_changed) options_.on_volume_changed();
  return response;
}

absl::StatusOr<v1::VerifyResponse> Maintenance::Verify(const v1::VerifyRequest& request) {
  std::lock_guard lock(running_);
  CacheLayout layout(options_.serving.root);
  ASSIGN_OR_RETURN(Inventory inventory, TakeInventory(layout));
  std::vector<NameAndVersion> selected;
  for (const InventoryModel& model : inventory.models) {
    if (!request.name().empty() && model.name != request.name()) continue;
    if (!request.version().empty() && model.version != request.version()) continue;
    selected.emplace_back(model.name, model.version);
  }
  if (selected.empty() && !request.name().empty()) {
    return absl::NotFoundError(fmt::format(
        "model {}{}{} is not published on {}", request.name(), request.version().empty() ? "" : "@",
        request.version(), layout.Root().string()));
  }
  v1::VerifyResponse response;
  for (const auto& [name, version] : selected) {
    *response.add_models() =
        VerifyOne(name, version, !request.no_quarantine(), RateLimit{}, nullptr);
  }
  return response;
}

v1::ModelVerification Maintenance::VerifyOne(const std::string& name, const std::string& version,
                                              bool quarantine, RateLimit rate_limit,
                                              const std::atomic<bool>* cancel) {
  CacheLayout layout(options_.serving.root);
  v1::ModelVerification result;
  result.set_name(name);
  result.set_version(version);
  absl::StatusOr<VerifyReport> report = VerifyModel(layout, name, version, rate_limit, cancel);
  if (!report.ok()) {
    result.set_error(std::string(report.status().message()));
    return result;
  }
  result.set_files_checked(report->files_checked);
  result.set_bytes_hashed(report->bytes_hashed);
  for (const BadFile& bad : report->bad_files) {
    v1::BadFileInfo* info = result.add_bad_files();
    info->set_path(bad.path);
    info->set_problem(bad.problem);
  }
  if (report->Clean() || !quarantine) return result;
  absl::StatusOr<std::filesystem::path> moved = Quarantine(layout, name, version, clock_.Now());
  if (!moved.ok()) {
    result.set_error(fmt::format("quarantine: {}", moved.status().message()));
    return result;
  }
  // The folder is gone from models/; Purge finds nothing to trash and drops the index entry.
  absl::StatusOr<uint64_t> forgotten = cache_.Purge(name, version);
  if (!forgotten.ok()) {
    spdlog::warn("quarantined model still in the index {}",
                 LogFields()
                     .Add("model", name)
                     .Add("version", version)
                     .Add("error", forgotten.status())
                     .Add("next", "it stays listed until it is filled again or the agent "
                                  "restarts"));
  }
  result.set_quarantined_to(moved->lexically_relative(layout.Root()).string());
  spdlog::error("model damaged, quarantined {}",
                LogFields()
                    .Add("model", name)
                    .Add("version", version)
                    .Add("bad_files", report->bad_files.size())
                    .Add("path", report->bad_files.front().path)
                    .Add("error", report->bad_files.front().problem)
                    .Add("quarantined_to", moved->string())
                    .Add("next", forgotten.ok() ? "the next Ensure fetches it again"
                                                : "it stays listed until it is filled again"));
  return result;
}

absl::StatusOr<int> Maintenance::Scrub(RateLimit rate_limit, const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(Inventory inventory, TakeInventory(CacheLayout(options_.serving.root)));
  int quarantined = 0;
  for (const InventoryModel& model : inventory.models) {
    if (cancel != nullptr && cancel->load()) return absl::CancelledError("scrub: cancelled");
    std::lock_guard lock(running_);
    v1::ModelVerification result = VerifyOne(model.name, model.version, true, rate_limit, cancel);
    if (!result.quarantined_to().empty()) ++quarantined;
    // Purged or quarantined meanwhile, usually; the next pass sees the volume as it is then.
    if (!result.error().empty()) {
      spdlog::info("scrub skipped a model {}", LogFields()
                                                   .Add("model", model.name)
                                                   .Add("version", model.version)
                                                   .Add("reason", result.error()));
    }
  }
  return quarantined;
}

absl::StatusOr<v1::RepairResponse> Maintenance::Repair(const v1::RepairRequest& request) {
  std::lock_guard lock(running_);
  const std::string& name = request.name();
  const std::string& version = request.version();
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateModelVersion(version));
  CacheLayout layout(options_.serving.root);
  v1::RepairResponse response;
  response.set_name(name);
  response.set_version(version);

  // A clean published copy needs nothing; a damaged one goes to quarantine first.
  absl::StatusOr<VerifyReport> published = VerifyModel(layout, name, version, RateLimit{});
  if (published.ok() && published->Clean()) {
    response.set_was_clean(true);
    response.set_path(layout.ModelDir(name, version).string());
    return response;
  }
  if (published.ok()) {
    RETURN_IF_ERROR(Quarantine(layout, name, version, clock_.Now()).status());
    RETURN_IF_ERROR(cache_.Purge(name, version).status());
  } else if (!absl::IsNotFound(published.status())) {
    return published.status();
  }

  ASSIGN_OR_RETURN(DamagedCopy damaged, ReadDamagedCopy(layout, name, version, response));
  const std::string& source = damaged.manifest.source();
  ASSIGN_OR_RETURN(std::unique_ptr<Source> origin, MakeSource(source, options_.sources));
  ASSIGN_OR_RETURN(std::vector<SourceFile> listing, origin->List());
  RepairPlan plan = PlanRepair(damaged.manifest, damaged.bad, listing);
  RETURN_IF_ERROR(PrepareRepairStaging(layout, name, version, damaged.folder, plan));
  spdlog::info("repair started {}", LogFields()
                                        .Add("model", name)
                                        .Add("version", version)
                                        .Add("files_kept", plan.keep.size())
                                        .Add("bytes_kept", plan.bytes_kept)
                                        .Add("path", damaged.folder.string())
                                        .Add("files_fetched", plan.fetch.size())
                                        .Add("bytes", plan.bytes_to_fetch)
                                        .Add("source", source));
  ASSIGN_OR_RETURN(v1::EnsureProgress ready, EnsureAndWait(cache_, name, version, source));
  response.set_bytes_kept(plan.bytes_kept);
  response.set_bytes_refetched(plan.bytes_to_fetch);
  response.set_path(ready.path());
  return response;
}

absl::StatusOr<v1::MigrateResponse> Maintenance::Migrate(const v1::MigrateRequest& request) {
  std::lock_guard lock(running_);
  ASSIGN_OR_RETURN(MaintainedVolume from, FindVolume(request.from_volume_id()));
  ASSIGN_OR_RETURN(MaintainedVolume to, FindVolume(request.to_volume_id()));
  if (from.id == to.id) {
    return absl::InvalidArgumentError(
        fmt::format("migrate: --from and --to are the same volume ({})", from.id));
  }
  CacheLayout from_layout(from.root);
  CacheLayout to_layout(to.root);
  ASSIGN_OR_RETURN(Inventory inventory, TakeInventory(from_layout));
  std::vector<NameAndVersion> models;
  if (request.models().empty()) {
    for (const InventoryModel& model : inventory.models) models.emplace_back(model.name, model.version);
  }
  for (const std::string& text : request.models()) {
    ASSIGN_OR_RETURN(NameAndVersion selected, ParseSelector(text));
    bool found = false;
    for (const InventoryModel& model : inventory.models) {
      if (model.name == selected.first &&
          (selected.second.empty() || model.version == selected.second)) {
        models.emplace_back(model.name, model.version);
        found = true;
      }
    }
    if (!found) {
      return absl::NotFoundError(
          fmt::format("migrate: model {} is not published on volume {} ({})", text, from.id,
                      from.root.string()));
    }
  }
  int parallelism =
      request.parallelism() > 0 ? request.parallelism() : options_.migrate_parallelism;
  v1::MigrateResponse response;
  for (const auto& [name, version] : models) {
    v1::MigratedModel* result = response.add_models();
    result->set_name(name);
    result->set_version(version);
    absl::StatusOr<MigrateReport> report =
        CopyModelBetweenVolumes(from_layout, to_layout, name, version, parallelism);
    if (!report.ok()) {
      result->set_error(std::string(report.status().message()));
      continue;
    }
    result->set_skipped(report->skipped);
    result->set_files(report->files);
    result->set_bytes_copied(report->bytes_copied);
    response.set_bytes_copied(response.bytes_copied() + report->bytes_copied);
    if (Serving(to)) {
      absl::StatusOr<v1::Manifest> manifest = ReadManifest(to_layout.ManifestPath(name, version));
      absl::Status adopted =
          manifest.ok() ? Adopt(name, version, manifest->source()) : manifest.status();
      if (!adopted.ok()) {
        result->set_error(fmt::format("copied, but the cache did not take it: {}", adopted.message()));
      }
    }
    LogFields migrated;
    migrated.Add("model", name).Add("version", version).Add("from", from.id).Add("to", to.id);
    if (report->skipped) migrated.Add("reason", "already there");
    spdlog::info("migrate done {}", migrated.Add("bytes", report->skipped ? 0 : report->bytes_copied));
  }
  if (options_.on_volume_changed) options_.on_volume_changed();
  return response;
}

}  // namespace modelcache
