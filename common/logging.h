#pragma once
// spdlog set-up for the daemons and the CLI: one line per event, key=value fields, or JSON lines.
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

}  // namespace modelcache
