#pragma once
// modelcachectl's coordinator (admin) commands: models list|show|set-source|set-source-prefix,
// usage, nodes, enable-caching, disable-caching, delete, purge [--dry-run], prefetch, pin,
// unpin, audit.
// Each takes --coordinator host:port (or $MODELCACHE_COORDINATOR), --token (or
// $MODELCACHE_TOKEN, else the kubeconfig user's token: --kubeconfig, --context), --json, and
// TLS options --tls/--ca-file.
#include <CLI/CLI.hpp>

namespace modelcache::cli {

// Exit codes shared with the agent commands (cli/cli_context.h): 0 ok, 2 usage,
// 3 coordinator unreachable, 4 the coordinator answered an error.
inline constexpr int kAdminExitOk = 0;
inline constexpr int kAdminExitUsage = 2;
inline constexpr int kAdminExitUnreachable = 3;
inline constexpr int kAdminExitFailed = 4;

// Registers the subcommands on `app`; a command's callback stores its exit code in
// *exit_code. Call once from main() before app.parse().
void AddAdminCommands(CLI::App& app, int* exit_code);

}  // namespace modelcache::cli
