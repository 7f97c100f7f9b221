#pragma once
// spdlog set-up for the daemons and the CLI: one line per event, key=value fields, or JSON lines.
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace modelcache {

struct LogOptions {
  std::string_view level = "info";  // trace, debug, info, warn, error, critical, off
  bool json = false;                // one JSON object per line instead of text
  std::string_view component;       // "agent", "coordinator", "modelcachectl"
};

// Installs the default logger (stderr). INVALID_ARGUMENT for an unknown level.
absl::Status SetUpLogging(const LogOptions& options);

// The environment's say over logging, applied by each daemon's config loader after the file
// and before the flags: MODELCACHE_LOG_LEVEL (a level name, checked where the level is) and
// MODELCACHE_LOG_JSON (1/true/yes/on or 0/false/no/off). "" means unset and changes nothing.
// INVALID_ARGUMENT naming the variable for a JSON value that is neither.
inline constexpr char kLogLevelVariable[] = "MODELCACHE_LOG_LEVEL";
inline constexpr char kLogJsonVariable[] = "MODELCACHE_LOG_JSON";
absl::Status ApplyLogEnvironment(std::string_view level_value, std::string_view json_value,
                                 std::string& level, bool& json);

}  // namespace modelcache
