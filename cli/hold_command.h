#pragma once
// `modelcachectl hold`: keeps a pod's lease on a cached model alive, so that no purge takes
// the model while the pod uses it. --once renews it once (an init container after fetch),
// --every D renews it every D until SIGTERM/SIGINT and then releases it (a sidecar), and
// --release ends it.
#include "cli/cli_context.h"

namespace CLI {
class App;
}  // namespace CLI

namespace modelcache::cli {

void AddHoldCommand(CLI::App& app, CliContext& context);

}  // namespace modelcache::cli
