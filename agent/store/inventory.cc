#include "agent/store/inventory.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <system_error>

#include "agent/store/exclusive_file.h"
#include "agent/store/manifest.h"
#include "agent/store/trash.h"
#include "common/fs.h"
#include "common/names.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

std::optional<Clock::TimePoint> ModifiedTimeOf(const std::filesystem::path& path) {
  struct stat info;
  if (::lstat(path.c_str(), &info) != 0) return std::nullopt;
  return ModifiedTime(info);
}

// Newest mtime below `path` (itself included): a fill pwrites into files whose folders'
// mtimes do not move.
Clock::TimePoint NewestModification(const std::filesystem::path& path) {
  Clock::TimePoint newest = ModifiedTimeOf(path).value_or(Clock::TimePoint());
  std::error_code error;
  std::filesystem::recursive_directory_iterator it(path, error);
  if (error) return newest;
  for (; it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (error) break;
    std::optional<Clock::TimePoint> modified = ModifiedTimeOf(it->path());
    if (modified.has_value()) newest = std::max(newest, *modified);
  }
  return newest;
}

std::string Relative(const CacheLayout& layout, const std::filesystem::path& path) {
  return path.lexically_relative(layout.Root()).string();
}

// Every entry of `dir` as an InventoryEntry with its size.
absl::Status ListEntries(const CacheLayout& layout, const std::filesystem::path& dir,
                         std::vector<InventoryEntry>& out) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(uint64_t bytes, TreeSizeBytes(dir / name));
    out.push_back({Relative(layout, dir / name), bytes});
  }
  return absl::OkStatus();
}

absl::Status ListModels(const CacheLayout& layout, Inventory& inventory) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(layout.ModelsDir()));
  for (const std::string& name : names) {
    std::filesystem::path name_dir = layout.ModelsDir() / name;
    if (!ValidateModelName(name).ok() || !IsDirectory(name_dir)) {
      ASSIGN_OR_RETURN(uint64_t bytes, TreeSizeBytes(name_dir));
      inventory.unknown.push_back({Relative(layout, name_dir), bytes});
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<std::string> versions, ListDirectory(name_dir));
    for (const std::string& version : versions) {
      std::filesystem::path model_dir = name_dir / version;
      ASSIGN_OR_RETURN(uint64_t bytes, TreeSizeBytes(model_dir));
      absl::StatusOr<v1::Manifest> manifest =
          ValidateModelVersion(version).ok() && IsDirectory(model_dir)
              ? ReadManifest(layout.ManifestPath(name, version))
              : absl::StatusOr<v1::Manifest>(absl::NotFoundError("not a model"));
      if (!manifest.ok() && !absl::IsNotFound(manifest.status()) &&
          !absl::IsDataLoss(manifest.status())) {
        return manifest.status();
      }
      if (!manifest.ok() || manifest->name() != name || manifest->version() != version) {
        inventory.unknown.push_back({Relative(layout, model_dir), bytes});
        continue;
      }
      InventoryModel model;
      model.name = name;
      model.version = version;
      model.bytes = bytes;
      model.last_access = ModifiedTimeOf(model_dir / kAccessFileName)
                              .value_or(FromUnixMillis(manifest->fetched_unix_ms()));
      inventory.models.push_back(std::move(model));
    }
  }
  return absl::OkStatus();
}

absl::Status ListStaging(const CacheLayout& layout, Inventory& inventory) {
  ASSIGN_OR_RETURN(std::vector<std::string> folders, ListDirectory(layout.StagingDir()));
  for (const std::string& folder : folders) {
    std::filesystem::path path = layout.StagingDir() / folder;
    InventoryStaging staging;
    staging.folder = folder;
    ASSIGN_OR_RETURN(staging.bytes, TreeSizeBytes(path));
    struct stat info;
    staging.journal_present = ::lstat((path / "journal.json").c_str(), &info) == 0;
    staging.modified = NewestModification(path);
    inventory.staging.push_back(std::move(staging));
  }
  return absl::OkStatus();
}

// Names at the root that belong to the cache (lost+found is the filesystem's, not junk).
bool IsKnownTopLevel(const CacheLayout& layout, const std::string& name) {
  for (const std::filesystem::path& known :
       {layout.ModelsDir(), layout.StagingDir(), layout.TrashDir(), layout.QuarantineDir(),
        layout.LocksDir(), layout.VolumeIdPath(), layout.AgentsDir()}) {
    if (known.filename() == name) return true;
  }
  return name == "lost+found";
}

std::optional<NameAndVersion> ParseStagingFolder(std::string_view folder) {
  size_t at = folder.find('@');
  if (at == std::string_view::npos) return std::nullopt;
  return NameAndVersion(std::string(folder.substr(0, at)), std::string(folder.substr(at + 1)));
}

bool Leased(const CleanupRequest& request, const NameAndVersion& key) {
  return !request.force && request.leased.count(key) > 0;
}

bool Requested(const CleanupRequest& request, const InventoryModel& model) {
  for (const NameAndVersion& wanted : request.models) {
    if (wanted.first == model.name && (wanted.second.empty() || wanted.second == model.version)) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<Inventory> TakeInventory(const CacheLayout& layout) {
  Inventory inventory;
  RETURN_IF_ERROR(ListModels(layout, inventory));
  RETURN_IF_ERROR(ListStaging(layout, inventory));
  RETURN_IF_ERROR(ListEntries(layout, layout.TrashDir(), inventory.trash));
  RETURN_IF_ERROR(ListEntries(layout, layout.QuarantineDir(), inventory.quarantine));
  ASSIGN_OR_RETURN(std::vector<std::string> top, ListDirectory(layout.Root()));
  for (const std::string& name : top) {
    if (IsKnownTopLevel(layout, name)) continue;
    ASSIGN_OR_RETURN(uint64_t bytes, TreeSizeBytes(layout.Root() / name));
    inventory.unknown.push_back({name, bytes});
  }
  std::sort(inventory.unknown.begin(), inventory.unknown.end(),
            [](const InventoryEntry& a, const InventoryEntry& b) { return a.path < b.path; });
  return inventory;
}

CleanupPlan PlanCleanup(const Inventory& inventory, const CleanupRequest& request) {
  CleanupPlan plan;
  auto add = [&plan](CleanupItem::Kind kind, const std::string& path, uint64_t bytes) {
    plan.remove.push_back({kind, path, bytes});
    plan.bytes += bytes;
  };

  for (const InventoryModel& model : inventory.models) {
    if (!request.everything && !Requested(request, model)) continue;
    std::string path = fmt::format("models/{}/{}", model.name, model.version);
    if (Leased(request, {model.name, model.version})) {
      plan.kept.push_back(fmt::format("{}: live lease (use --force)", path));
      continue;
    }
    add(CleanupItem::Kind::kModel, path, model.bytes);
  }
  for (const NameAndVersion& wanted : request.models) {
    bool present = std::any_of(inventory.models.begin(), inventory.models.end(),
                               [&wanted](const InventoryModel& model) {
                                 return model.name == wanted.first &&
                                        (wanted.second.empty() || model.version == wanted.second);
                               });
    if (!present) {
      plan.kept.push_back(fmt::format("{}@{}: not on this volume", wanted.first,
                                      wanted.second.empty() ? "*" : wanted.second));
    }
  }

  for (const InventoryStaging& staging : inventory.staging) {
    bool stale = request.staging_older_than.has_value() &&
                 request.now - staging.modified >= *request.staging_older_than;
    if (!request.everything && !stale) continue;
    std::string path = "staging/" + staging.folder;
    std::optional<NameAndVersion> key = ParseStagingFolder(staging.folder);
    if (key.has_value() && Leased(request, *key)) {
      plan.kept.push_back(fmt::format("{}: live lease (use --force)", path));
      continue;
    }
    add(CleanupItem::Kind::kStaging, path, staging.bytes);
  }

  if (request.everything || request.trash) {
    for (const InventoryEntry& entry : inventory.trash) {
      add(CleanupItem::Kind::kTrash, entry.path, entry.bytes);
    }
  }
  if (request.everything || request.quarantine) {
    for (const InventoryEntry& entry : inventory.quarantine) {
      add(CleanupItem::Kind::kQuarantine, entry.path, entry.bytes);
    }
  }
  if (request.everything || request.unknown) {
    for (const InventoryEntry& entry : inventory.unknown) {
      add(CleanupItem::Kind::kUnknown, entry.path, entry.bytes);
    }
  }
  return plan;
}

absl::StatusOr<CleanupResult> ExecuteCleanup(const CacheLayout& layout, const CleanupPlan& plan) {
  CleanupResult result;
  ASSIGN_OR_RETURN(result.before, ReadVolumeSpace(layout.Root()));
  for (const CleanupItem& item : plan.remove) {
    std::filesystem::path path = layout.Root() / item.path;
    std::filesystem::path doomed = path;
    if (item.kind != CleanupItem::Kind::kTrash) {
      absl::StatusOr<std::filesystem::path> moved = MoveToTrash(layout, path);
      if (absl::IsNotFound(moved.status())) continue;  // removed by someone else meanwhile
      if (!moved.ok()) {
        result.problems.push_back(
            fmt::format("{}: {}", item.path, std::string(moved.status().message())));
        continue;
      }
      doomed = *moved;
    }
    absl::StatusOr<uint64_t> bytes = RemoveTreeCountingBytes(doomed);
    if (!bytes.ok()) {
      result.problems.push_back(
          fmt::format("{}: {}", item.path, std::string(bytes.status().message())));
      continue;
    }
    result.bytes_freed += *bytes;
    result.removed.push_back(item.path);
  }
  ASSIGN_OR_RETURN(result.after, ReadVolumeSpace(layout.Root()));
  return result;
}

}  // namespace modelcache
