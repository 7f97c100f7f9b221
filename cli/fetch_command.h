#pragma once
// `modelcachectl fetch`: make a model ready through the node agent (or locally) and print its
// path on stdout, for init containers.
#include "cli/cli_context.h"

namespace CLI {
class App;
}  // namespace CLI

namespace modelcache::cli {

void AddFetchCommand(CLI::App& app, CliContext& context);

}  // namespace modelcache::cli
