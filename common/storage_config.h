#pragma once
// The `modelsCacheStorage` configuration block, shared by the agent and the coordinator:
//   modelsCacheStorage:
//     enabled: true
//     storageSize: 300Gi
//     storageClassName: nfs-csi
//     pvcNameSuffix: models
//     bypassStorageCheck: false
//     checkUnusedCachedModelsEvery: 1h
//     purgeUnusedCachedModelsAfter: 7d
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace modelcache {

struct StorageConfig {
  bool enabled = false;
  uint64_t storage_size_bytes = 0;  // 0 = not set (no quota)
  std::string storage_size_text;    // as written, e.g. "300Gi"
  std::string storage_class_name;
  std::string pvc_name_suffix;
  bool bypass_storage_check = false;
  std::chrono::seconds check_unused_every{3600};
  std::chrono::seconds purge_unused_after{7 * 24 * 3600};
};

// Parses the block itself (a map; a null node gives the defaults). INVALID_ARGUMENT for an
// unknown key or a bad value, naming the key ("modelsCacheStorage.storageSize") and the value.
absl::StatusOr<StorageConfig> ParseStorageConfig(const YAML::Node& block);

// Reads the `modelsCacheStorage` key of a whole YAML document; a missing key gives the
// defaults. INVALID_ARGUMENT when the document does not parse.
absl::StatusOr<StorageConfig> ParseStorageConfigYaml(std::string_view yaml_text);

}  // namespace modelcache
