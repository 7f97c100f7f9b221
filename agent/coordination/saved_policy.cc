#include "agent/coordination/saved_policy.h"

#include "common/fs.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

absl::StatusOr<std::optional<v1::CachingPolicy>> LoadSavedPolicy(
    const std::filesystem::path& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  if (absl::IsNotFound(contents.status())) return std::optional<v1::CachingPolicy>();
  if (!contents.ok()) return contents.status();
  v1::CachingPolicy policy;
  if (!policy.ParseFromString(*contents)) {
    return absl::DataLossError(fmt::format("saved caching policy {}: cannot parse", path.string()));
  }
  return std::optional<v1::CachingPolicy>(std::move(policy));
}

absl::Status SavePolicy(const std::filesystem::path& path, const v1::CachingPolicy& policy) {
  RETURN_IF_ERROR(CreateDirectories(path.parent_path()));
  return WriteFileAtomic(path, policy.SerializeAsString());
}

}  // namespace modelcache
