#pragma once
// Model sources in a real coordinator's registry, for tests whose agents have a coordinator
// (such an agent fills a version only from its registered source): register one as an admin
// or maintainer does with `modelcachectl models set-source` (the SetSource RPC), and wait
// until an agent applied the policy that carries them.
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace modelcache::testing {

// SetSource for name@version at `coordinator` (host:port, plaintext), with `token` as the
// bearer token ("" sends none). The coordinator's error, if any, names the version.
absl::Status RegisterSource(const std::string& coordinator, std::string_view token,
                            std::string_view name, std::string_view version,
                            std::string_view source);

// True once the agent logging to `agent_log` (AgentProcess::LogPath(), text or JSON lines)
// applied a caching policy from the coordinator that carries exactly `sources` registered
// sources ("caching policy from the coordinator: default ..., N rules, <sources> sources"),
// `times` times or more (a change of a registered source keeps the count: wait for one more).
bool WaitForRegisteredSources(const std::filesystem::path& agent_log, int sources,
                              std::chrono::milliseconds timeout, int times = 1);

}  // namespace modelcache::testing
