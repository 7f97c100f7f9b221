#pragma once
// When `modelcachectl fetch --fallback` downloads the model itself after the agent answered
// with an error: only for answers where a download by the pod can still succeed, because the
// trouble is the node's cache or agent, not the model or its source. Pure: no I/O.
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace modelcache::cli {

// Why to fall back after the agent's answer `status` (one phrase for the log line: "the cache
// is full"), or nullopt to report the error instead:
//   FAILED_PRECONDITION  the agent refuses (caching disabled, no policy yet, another source,
//                        the cache refused by the storage check)
//   RESOURCE_EXHAUSTED   the cache volume is full or over its quota (after room on demand),
//                        or the agent's listing budget is taken
//   UNAVAILABLE          the agent went away or cannot reach the origin from its node
//   CANCELLED            the agent is shutting down
// Never on PERMISSION_DENIED (the agent refused the source on purpose: a pod that may read it
// uses MODELCACHE_DISABLE), DEADLINE_EXCEEDED (the caller's time is spent), NOT_FOUND,
// INVALID_ARGUMENT, DATA_LOSS (the source itself is wrong) or any other code.
std::optional<std::string> LocalFallbackReason(const absl::Status& status);

}  // namespace modelcache::cli
