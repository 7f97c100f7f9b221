#include "agent/store/index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <system_error>

#include "agent/store/manifest.h"
#include "agent/store/trash.h"
#include "common/fs.h"
#include "common/names.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

std::pair<std::string, std::string> Key(std::string_view name, std::string_view version) {
  return {std::string(name), std::string(version)};
}

std::optional<Clock::TimePoint> ReadAccessTime(const std::filesystem::path& model_dir) {
  struct stat info;
  std::filesystem::path access = model_dir / kAccessFileName;
  if (::stat(access.c_str(), &info) != 0) return std::nullopt;
  auto since_epoch =
      std::chrono::seconds(info.st_mtim.tv_sec) + std::chrono::nanoseconds(info.st_mtim.tv_nsec);
  return Clock::TimePoint(std::chrono::duration_cast<Clock::TimePoint::duration>(since_epoch));
}

// Relative path for problem reports ("models/x/1").
std::string Relative(const CacheLayout& layout, const std::filesystem::path& path) {
  return path.lexically_relative(layout.Root()).string();
}

absl::Status TrashWithReport(const CacheLayout& layout, const std::filesystem::path& victim,
                             std::string_view why, ScanReport& report) {
  absl::StatusOr<std::filesystem::path> moved = MoveToTrash(layout, victim);
  if (absl::IsNotFound(moved.status())) return absl::OkStatus();  // another agent got there
  RETURN_IF_ERROR(moved.status());
  report.problems.push_back({Relative(layout, victim), std::string(why), "moved to trash"});
  return absl::OkStatus();
}

absl::Status ScanModels(const CacheLayout& layout, ScanReport& report) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(layout.ModelsDir()));
  for (const std::string& name : names) {
    std::filesystem::path name_dir = layout.ModelsDir() / name;
    // Not ours to judge: leave unknown entries alone, but say so.
    if (!ValidateModelName(name).ok() || !IsDirectory(name_dir)) {
      report.problems.push_back({Relative(layout, name_dir), "not a model folder", "ignored"});
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<std::string> versions, ListDirectory(name_dir));
    for (const std::string& version : versions) {
      std::filesystem::path model_dir = layout.ModelDir(name, version);
      if (!ValidateModelVersion(version).ok() || !IsDirectory(model_dir)) {
        report.problems.push_back(
            {Relative(layout, model_dir), "not a model version folder", "ignored"});
        continue;
      }
      absl::StatusOr<v1::Manifest> manifest = ReadManifest(layout.ManifestPath(name, version));
      if (absl::IsNotFound(manifest.status())) {
        RETURN_IF_ERROR(TrashWithReport(layout, model_dir, "no manifest", report));
        continue;
      }
      if (absl::IsDataLoss(manifest.status())) {
        RETURN_IF_ERROR(TrashWithReport(
            layout, model_dir,
            fmt::format("bad manifest ({})", std::string(manifest.status().message())), report));
        continue;
      }
      RETURN_IF_ERROR(manifest.status());
      if (manifest->name() != name || manifest->version() != version) {
        RETURN_IF_ERROR(TrashWithReport(
            layout, model_dir,
            fmt::format("manifest is for {}@{}", manifest->name(), manifest->version()), report));
        continue;
      }
      IndexEntry entry;
      entry.last_access =
          ReadAccessTime(model_dir).value_or(FromUnixMillis(manifest->fetched_unix_ms()));
      entry.manifest = *std::move(manifest);
      report.index.Put(std::move(entry));
    }
  }
  return absl::OkStatus();
}

// Splits "<name>@<version>"; nullopt when it is not a valid staging folder name.
std::optional<std::pair<std::string, std::string>> ParseStagingName(std::string_view folder) {
  size_t at = folder.find('@');
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view name = folder.substr(0, at);
  std::string_view version = folder.substr(at + 1);
  if (!ValidateModelName(name).ok() || !ValidateModelVersion(version).ok()) return std::nullopt;
  return Key(name, version);
}

absl::Status ScanStaging(const CacheLayout& layout, ScanReport& report) {
  ASSIGN_OR_RETURN(std::vector<std::string> folders, ListDirectory(layout.StagingDir()));
  for (const std::string& folder : folders) {
    std::filesystem::path path = layout.StagingDir() / folder;
    std::optional<std::pair<std::string, std::string>> key = ParseStagingName(folder);
    std::string why;
    if (!key.has_value()) {
      why = "not a staging folder name";
    } else {
      absl::StatusOr<v1::FillJournal> journal =
          ReadJournal(layout.JournalPath(key->first, key->second));
      if (journal.ok() && journal->name() == key->first && journal->version() == key->second) {
        report.staging_found.push_back(folder);
        continue;
      }
      if (!journal.ok() && !absl::IsNotFound(journal.status()) &&
          !absl::IsDataLoss(journal.status())) {
        return journal.status();
      }
      why = journal.ok() ? "journal is for another model" : "no usable journal";
      // A fill on another node creates its staging folder before its first journal: while
      // its lock file is there, the folder is that fill's, not a crash's leftover.
      std::error_code error;
      if (!journal.ok() &&
          std::filesystem::exists(layout.LocksDir() / (folder + ".lock"), error)) {
        report.problems.push_back(
            {Relative(layout, path), why, "kept: a fill lock exists for it"});
        continue;
      }
    }
    ASSIGN_OR_RETURN(uint64_t bytes, TreeSizeBytes(path));
    absl::StatusOr<std::filesystem::path> moved = MoveToTrash(layout, path);
    if (absl::IsNotFound(moved.status())) continue;
    RETURN_IF_ERROR(moved.status());
    report.staging_removed_bytes += bytes;
    report.problems.push_back({Relative(layout, path), why, "moved to trash"});
  }
  return absl::OkStatus();
}

}  // namespace

const IndexEntry* ModelIndex::Find(std::string_view name, std::string_view version) const {
  auto it = entries_.find(Key(name, version));
  return it == entries_.end() ? nullptr : &it->second;
}

void ModelIndex::Put(IndexEntry entry) {
  auto key = Key(entry.manifest.name(), entry.manifest.version());
  entries_.insert_or_assign(std::move(key), std::move(entry));
}

void ModelIndex::Remove(std::string_view name, std::string_view version) {
  entries_.erase(Key(name, version));
}

std::vector<IndexEntry> ModelIndex::All() const {
  std::vector<IndexEntry> all;
  all.reserve(entries_.size());
  for (const auto& [key, entry] : entries_) all.push_back(entry);
  return all;
}

uint64_t ModelIndex::TotalBytes() const {
  uint64_t total = 0;
  for (const auto& [key, entry] : entries_) total += entry.manifest.total_bytes();
  return total;
}

void ModelIndex::SetLastAccess(std::string_view name, std::string_view version,
                               Clock::TimePoint time) {
  auto it = entries_.find(Key(name, version));
  if (it != entries_.end()) it->second.last_access = time;
}

absl::StatusOr<ScanReport> ScanVolume(const CacheLayout& layout) {
  RETURN_IF_ERROR(layout.CreateDirectories());
  ScanReport report;
  RETURN_IF_ERROR(ScanModels(layout, report));
  RETURN_IF_ERROR(ScanStaging(layout, report));
  return report;
}

absl::StatusOr<bool> IsPublished(const CacheLayout& layout, std::string_view name,
                                 std::string_view version) {
  std::filesystem::path path = layout.ManifestPath(name, version);
  struct stat info;
  if (::stat(path.c_str(), &info) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return ErrnoStatus(errno, "stat", path);
}

absl::Status PersistAccess(const CacheLayout& layout, std::string_view name,
                           std::string_view version, Clock::TimePoint time) {
  std::filesystem::path path = layout.ModelDir(name, version) / kAccessFileName;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  struct timespec times[2];
  times[0].tv_sec = seconds.count();
  times[0].tv_nsec =
      std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count();
  times[1] = times[0];
  int result = ::futimens(fd, times);
  int error_number = errno;
  ::close(fd);
  if (result != 0) return ErrnoStatus(error_number, "set access time of", path);
  return absl::OkStatus();
}

}  // namespace modelcache
