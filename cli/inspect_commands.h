#pragma once
// `modelcachectl list` and `modelcachectl stat`: what the node agent has cached.
#include "cli/cli_context.h"

namespace CLI {
class App;
}  // namespace CLI

namespace modelcache::cli {

void AddInspectCommands(CLI::App& app, CliContext& context);

}  // namespace modelcache::cli
