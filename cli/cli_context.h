#pragma once
// What every modelcachectl command gets: the environment (read once in main) and where to
// put its exit code.
#include <string>

#include "common/environment.h"

namespace modelcache::cli {

// Exit codes of every command, also documented in the README.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;        // bad flags or arguments
inline constexpr int kExitUnreachable = 3;  // no agent (or coordinator) answers
inline constexpr int kExitFailed = 4;       // the agent, the coordinator or the local fill
                                            // answered an error

struct CliContext {
  ProcessEnvironment environment;
  int exit_code = kExitOk;
};

// --socket if given, else $MODELCACHE_SOCKET, else the agent's default socket.
std::string ResolveSocketPath(const std::string& flag_value, const ProcessEnvironment& environment);

// "true", "1" or "yes" (any case).
bool IsTruthy(std::string_view value);

}  // namespace modelcache::cli
