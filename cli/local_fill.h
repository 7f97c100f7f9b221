#pragma once
// modelcachectl's fallback without an agent: the agent's own engine (ModelCache on an
// EventLoop) run in this process, with `dest` as the cache root.
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>

#include "absl/status/statusor.h"
#include "agent/source/source.h"
#include "modelcache/v1/agent.pb.h"

namespace modelcache::cli {

// Fills (or finds) the model under <dest>/models/<name>/<version> and returns the READY
// progress. `on_progress` runs on this thread. DEADLINE_EXCEEDED after `timeout`, if given.
absl::StatusOr<v1::EnsureProgress> FillLocally(
    const v1::EnsureRequest& request, const std::filesystem::path& dest,
    const SourceOptions& sources, std::optional<std::chrono::seconds> timeout,
    const std::function<void(const v1::EnsureProgress&)>& on_progress);

}  // namespace modelcache::cli
