#pragma once
// The last caching policy the coordinator sent, kept in the agent's state folder. An agent
// that starts while the coordinator is down applies the saved policy until the coordinator
// answers with a new one, instead of caching every model (a model an admin disabled stays
// refused across an agent restart). Without a saved policy (first start) the agent caches
// nothing until the first policy arrives (caching is opt-in: Ensure answers FAILED_PRECONDITION
// and clients fall back), as it keeps serving while the coordinator is away.
#include <filesystem>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

// File name of the saved policy inside the agent's state folder.
inline constexpr char kSavedPolicyFileName[] = "caching-policy.pb";

// nullopt when `path` does not exist; DATA_LOSS (naming the file) when it cannot be parsed.
absl::StatusOr<std::optional<v1::CachingPolicy>> LoadSavedPolicy(const std::filesystem::path& path);

// Replaces the saved policy atomically (temporary file, fsync, rename); creates the folder.
absl::Status SavePolicy(const std::filesystem::path& path, const v1::CachingPolicy& policy);

}  // namespace modelcache
