#pragma once
// Validation of everything that becomes a path on the cache volume.
#include <string_view>

#include "absl/status/status.h"

namespace modelcache {

inline constexpr size_t kMaxNameLength = 128;
inline constexpr size_t kMaxRelativePathLength = 1024;

// A model name or version: 1..128 characters of [A-Za-z0-9._-], not starting with '.'
// (so never "." or ".."). INVALID_ARGUMENT names the value and the rule it breaks.
absl::Status ValidateModelName(std::string_view name);
absl::Status ValidateModelVersion(std::string_view version);

// A file path inside a model, from a source listing: relative, '/'-separated, no empty,
// "." or ".." parts, no NUL, control characters or backslashes (a Windows separator in a
// listing would name a different file on Linux), each part at most 255 bytes, whole path
// at most 1024 bytes, and no part starting with ".modelcache" (reserved for our own files).
absl::Status ValidateRelativeFilePath(std::string_view path);

}  // namespace modelcache
