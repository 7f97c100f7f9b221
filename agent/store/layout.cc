#include "agent/store/layout.h"

#include <string>

#include "common/fs.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

std::string StagingName(std::string_view name, std::string_view version) {
  std::string staging_name(name);
  staging_name += '@';
  staging_name += version;
  return staging_name;
}

}  // namespace

CacheLayout::CacheLayout(std::filesystem::path root) : root_(std::move(root)) {}

std::filesystem::path CacheLayout::ModelsDir() const { return root_ / "models"; }

std::filesystem::path CacheLayout::ModelDir(std::string_view name, std::string_view version) const {
  return ModelsDir() / name / version;
}

std::filesystem::path CacheLayout::ManifestPath(std::string_view name,
                                                std::string_view version) const {
  return ModelDir(name, version) / kManifestFileName;
}

std::filesystem::path CacheLayout::StagingDir() const { return root_ / "staging"; }

std::filesystem::path CacheLayout::StagingFor(std::string_view name,
                                              std::string_view version) const {
  return StagingDir() / StagingName(name, version);
}

std::filesystem::path CacheLayout::StagingTree(std::string_view name,
                                               std::string_view version) const {
  return StagingFor(name, version) / "tree";
}

std::filesystem::path CacheLayout::JournalPath(std::string_view name,
                                               std::string_view version) const {
  return StagingFor(name, version) / "journal.json";
}

std::filesystem::path CacheLayout::TrashDir() const { return root_ / "trash"; }

std::filesystem::path CacheLayout::QuarantineDir() const { return root_ / "quarantine"; }

std::filesystem::path CacheLayout::LocksDir() const { return root_ / "locks"; }

std::filesystem::path CacheLayout::VolumeIdPath() const { return root_ / kVolumeIdFileName; }

std::filesystem::path CacheLayout::AgentsDir() const { return root_ / "agents"; }

std::filesystem::path CacheLayout::AgentStateDir(std::string_view node_name) const {
  return AgentsDir() / (node_name.empty() ? std::string_view("unnamed") : node_name);
}

absl::Status CacheLayout::CreateDirectories() const {
  RETURN_IF_ERROR(modelcache::CreateDirectories(ModelsDir()));
  RETURN_IF_ERROR(modelcache::CreateDirectories(StagingDir()));
  RETURN_IF_ERROR(modelcache::CreateDirectories(TrashDir()));
  return absl::OkStatus();
}

}  // namespace modelcache
