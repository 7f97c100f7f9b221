#pragma once
// Where things live on the cache volume. Every path the agent touches comes from here.
//   <root>/models/<name>/<version>/...           published models (files at their relative paths)
//   <root>/models/<name>/<version>/.modelcache-manifest.json
//   <root>/staging/<name>@<version>/tree/...     a fill in progress (same volume: rename publishes)
//   <root>/staging/<name>@<version>/journal.json
//   <root>/trash/<unique>/                       renamed here, then deleted in the background
//   <root>/quarantine/<name>@<version>-<ms>/     a model whose files failed verification
//   <root>/locks/<name>@<version>.lock           cross-node fill lock (coordinator unreachable)
//   <root>/.modelcache-volume-id                 the volume's identity, written once
//   <root>/agents/<node>/                        one agent's own state (command answers, policy)
#include <filesystem>
#include <string_view>

#include "absl/status/status.h"

namespace modelcache {

inline constexpr std::string_view kManifestFileName = ".modelcache-manifest.json";
// Its mtime is the model's last access time on this volume.
inline constexpr std::string_view kAccessFileName = ".modelcache-access";
inline constexpr std::string_view kVolumeIdFileName = ".modelcache-volume-id";

class CacheLayout {
 public:
  explicit CacheLayout(std::filesystem::path root);

  const std::filesystem::path& Root() const { return root_; }
  std::filesystem::path ModelsDir() const;
  std::filesystem::path ModelDir(std::string_view name, std::string_view version) const;
  std::filesystem::path ManifestPath(std::string_view name, std::string_view version) const;
  std::filesystem::path StagingDir() const;
  std::filesystem::path StagingFor(std::string_view name, std::string_view version) const;
  std::filesystem::path StagingTree(std::string_view name, std::string_view version) const;
  std::filesystem::path JournalPath(std::string_view name, std::string_view version) const;
  std::filesystem::path TrashDir() const;
  std::filesystem::path QuarantineDir() const;
  std::filesystem::path LocksDir() const;
  std::filesystem::path VolumeIdPath() const;
  std::filesystem::path AgentsDir() const;
  // The state folder of the agent on `node_name` ("unnamed" when empty).
  std::filesystem::path AgentStateDir(std::string_view node_name) const;

  // Creates models/, staging/ and trash/ if missing.
  absl::Status CreateDirectories() const;

 private:
  std::filesystem::path root_;
};

}  // namespace modelcache
