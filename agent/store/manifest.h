#pragma once
// The manifest beside each published model and the fill journal in staging, as JSON.
#include <filesystem>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

// NOT_FOUND when missing; DATA_LOSS (naming the path) when the JSON does not parse or a file
// entry has an invalid path.
absl::StatusOr<v1::Manifest> ReadManifest(const std::filesystem::path& path);
absl::Status WriteManifest(const std::filesystem::path& path, const v1::Manifest& manifest);

absl::StatusOr<v1::FillJournal> ReadJournal(const std::filesystem::path& path);
absl::Status WriteJournal(const std::filesystem::path& path, const v1::FillJournal& journal);

}  // namespace modelcache
