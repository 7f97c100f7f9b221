#pragma once
// What is published on the volume, in memory. Owned by the agent's loop thread (not
// thread-safe); rebuilt from the manifests at start by ScanVolume.
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/store/layout.h"
#include "common/clock.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

struct IndexEntry {
  v1::Manifest manifest;
  Clock::TimePoint last_access;
};

class ModelIndex {
 public:
  const IndexEntry* Find(std::string_view name, std::string_view version) const;
  void Put(IndexEntry entry);
  void Remove(std::string_view name, std::string_view version);
  std::vector<IndexEntry> All() const;
  uint64_t TotalBytes() const;
  size_t Size() const { return entries_.size(); }
  // Updates the in-memory time only; PersistAccess writes it to the volume.
  void SetLastAccess(std::string_view name, std::string_view version, Clock::TimePoint time);

 private:
  std::map<std::pair<std::string, std::string>, IndexEntry> entries_;
};

// Something the scan found wrong on the volume, and what it did about it (for the log).
struct ScanProblem {
  std::string path;   // relative to the volume root: "models/x/1"
  std::string error;  // "no manifest"
  std::string next;   // "moved to trash", "ignored", ...
};

struct ScanReport {
  ModelIndex index;
  std::vector<ScanProblem> problems;
  std::vector<std::string> staging_found;  // "<name>@<version>" folders with a journal (resumable)
  uint64_t staging_removed_bytes = 0;      // staging without a usable journal, trashed
};

// Reads every models/<name>/<version>/ manifest (last access from the access file's mtime,
// else fetched_unix_ms). A version folder without a valid manifest is moved to trash.
// Staging folders with a readable journal are kept for resume; others are trashed.
absl::StatusOr<ScanReport> ScanVolume(const CacheLayout& layout);

// Whether models/<name>/<version>/ still holds its manifest (one stat, nothing read): false
// once the folder or the whole cache root is gone. An error when the volume does not answer
// (EIO, a stale NFS handle), which says nothing about the model. Blocking.
absl::StatusOr<bool> IsPublished(const CacheLayout& layout, std::string_view name,
                                 std::string_view version);

// Sets the access file's mtime (creating it) so the time survives restarts and is seen by
// the other agents of a shared volume. Blocking.
absl::Status PersistAccess(const CacheLayout& layout, std::string_view name,
                           std::string_view version, Clock::TimePoint time);

}  // namespace modelcache
