#pragma once
// What is on a cache volume and what `modelcachectl cleanup` would remove: a read-only
// listing, a pure plan, and the step that carries the plan out.
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/store/layout.h"
#include "agent/store/space.h"
#include "common/clock.h"

namespace modelcache {

struct InventoryModel {
  std::string name;
  std::string version;
  uint64_t bytes = 0;            // files on disk below the model folder
  Clock::TimePoint last_access;  // access file mtime, else the manifest's fetched time
};

struct InventoryStaging {
  std::string folder;  // "<name>@<version>" (or whatever the folder is called)
  uint64_t bytes = 0;
  bool journal_present = false;
  Clock::TimePoint modified;  // newest mtime of the folder, its journal and its tree
};

// An entry known only by its path: trash/quarantine entries and anything unknown.
struct InventoryEntry {
  std::string path;  // relative to the volume root ("trash/123-x", "models/x/1", "junk")
  uint64_t bytes = 0;
};

struct Inventory {
  std::vector<InventoryModel> models;     // sorted by name, version
  std::vector<InventoryStaging> staging;  // sorted by folder
  std::vector<InventoryEntry> trash;
  std::vector<InventoryEntry> quarantine;
  // Top-level entries that are none of ours, and model folders without a valid manifest.
  std::vector<InventoryEntry> unknown;
};

// Lists the volume without changing it. Entries that vanish meanwhile (another agent) are
// skipped. Errors name the path that could not be read.
absl::StatusOr<Inventory> TakeInventory(const CacheLayout& layout);

using NameAndVersion = std::pair<std::string, std::string>;  // name, version

struct CleanupRequest {
  bool everything = false;  // all of the below, and every model
  bool trash = false;
  bool quarantine = false;
  bool unknown = false;
  // Staging folders not modified for this long (abandoned fills).
  std::optional<std::chrono::seconds> staging_older_than;
  std::vector<NameAndVersion> models;  // specific models; version "" means every version
  std::set<NameAndVersion> leased;     // live leases: never removed (models nor staging) ...
  bool force = false;                  // ... unless forced
  Clock::TimePoint now;
};

struct CleanupItem {
  enum class Kind { kModel, kStaging, kTrash, kQuarantine, kUnknown };
  Kind kind = Kind::kUnknown;
  std::string path;  // relative to the volume root
  uint64_t bytes = 0;
};

struct CleanupPlan {
  std::vector<CleanupItem> remove;
  std::vector<std::string>
      kept;            // "models/x/1: live lease (use --force)", "y@2: not on this volume"
  uint64_t bytes = 0;  // sum over `remove`
};

// Pure: what to remove for `request`, given `inventory`.
CleanupPlan PlanCleanup(const Inventory& inventory, const CleanupRequest& request);

struct CleanupResult {
  std::vector<std::string> removed;   // relative paths
  std::vector<std::string> problems;  // "models/x/1: <error>"; the other items still went
  uint64_t bytes_freed = 0;
  VolumeSpace before;
  VolumeSpace after;
};

// Moves each planned item to trash (atomic: a model disappears whole), deletes it, and
// reports the bytes freed and the volume's free space before and after. Items already gone
// are skipped. Leases are not re-checked here: the caller holds them off while this runs.
// Errors only when the volume's space cannot be read; per-item errors go to `problems`.
absl::StatusOr<CleanupResult> ExecuteCleanup(const CacheLayout& layout, const CleanupPlan& plan);

}  // namespace modelcache
