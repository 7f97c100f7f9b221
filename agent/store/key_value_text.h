#pragma once
// "key=value" lines: the format of the volume's small control files (volume id, fill locks),
// readable with cat and parsable without a JSON library by any tool.
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace modelcache {

using KeyValues = std::map<std::string, std::string, std::less<>>;

// One "key=value\n" line per entry, in the given order. Values must satisfy ValidateValue.
std::string FormatKeyValues(const std::vector<std::pair<std::string, std::string>>& entries);

// INVALID_ARGUMENT (naming `what`) for an empty value or one with control characters: a
// newline would forge another key.
absl::Status ValidateValue(std::string_view what, std::string_view value);

// Parses FormatKeyValues' output. DATA_LOSS naming `path` for a line without '=', an empty
// key or a repeated key. Blank lines are ignored.
absl::StatusOr<KeyValues> ParseKeyValues(std::string_view text, const std::filesystem::path& path);

// The value of `key`, or DATA_LOSS naming `path` and the key when it is missing.
absl::StatusOr<std::string> RequiredValue(const KeyValues& values, std::string_view key,
                                          const std::filesystem::path& path);
// RequiredValue parsed as a decimal int64; DATA_LOSS when it is not one.
absl::StatusOr<int64_t> RequiredInt(const KeyValues& values, std::string_view key,
                                    const std::filesystem::path& path);

}  // namespace modelcache
