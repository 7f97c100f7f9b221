#pragma once
// modelcachectl's coordinator (admin) commands: models list|show|set-source|set-source-prefix,
// usage, nodes, enable-caching, disable-caching, delete, purge [--dry-run], prefetch, pin,
// unpin, audit.
// Each takes --coordinator host:port (or $MODELCACHE_COORDINATOR), --token (or
// $MODELCACHE_TOKEN, else the kubeconfig user's token: --kubeconfig, --context), --json, and
// TLS options --tls/--ca-file.
// Exit codes are modelcachectl's (cli/cli_context.h), "unreachable" meaning the coordinator.
#include <CLI/CLI.hpp>

#include "cli/cli_context.h"

namespace modelcache::cli {

// Registers the subcommands on `app`; a command's callback stores its exit code in
// context.exit_code. Call once from main() before app.parse().
void AddAdminCommands(CLI::App& app, CliContext& context);

}  // namespace modelcache::cli
