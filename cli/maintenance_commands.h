#pragma once
// `modelcachectl volumes | cleanup | verify | repair | migrate`: cache volume maintenance
// through the node agent (proto/modelcache/v1/maintenance.proto). Tables for people, --json
// for scripts. Exit codes: those of cli_context.h, and 1 when verify finds a damaged model.
#include "cli/cli_context.h"

namespace CLI {
class App;
}  // namespace CLI

namespace modelcache::cli {

inline constexpr int kExitDamaged = 1;  // verify: at least one model has bad files

void AddMaintenanceCommands(CLI::App& app, CliContext& context);

}  // namespace modelcache::cli
