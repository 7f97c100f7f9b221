// modelcachectl: the node agent's command-line client (fetch for init containers, list, stat).
#include <CLI/CLI.hpp>

#include "cli/admin_commands.h"
#include "cli/cli_context.h"
#include "cli/fetch_command.h"
#include "cli/hold_command.h"
#include "cli/inspect_commands.h"
#include "cli/maintenance_commands.h"
#include "common/logging.h"
#include "spdlog/fmt/fmt.h"

int main(int argc, char** argv) {
  namespace cli = modelcache::cli;
  cli::CliContext context{.environment = modelcache::ProcessEnvironment::FromProcess()};
  CLI::App app{"modelcachectl: client of the modelcache node agent"};
  app.set_version_flag("--version", "modelcachectl " MODELCACHE_VERSION);
  app.require_subcommand(1);
  auto set_up_logging = [](const std::string& level) {
    (void)modelcache::SetUpLogging({.level = level, .json = false, .component = "modelcachectl"});
  };
  set_up_logging("warn");
  // Applied while parsing, so before any command's callback runs.
  app.add_option("--log-level", "Log level of the local fallback's engine (default warn)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->each(set_up_logging);
  cli::AddFetchCommand(app, context);
  cli::AddInspectCommands(app, context);
  cli::AddMaintenanceCommands(app, context);
  cli::AddHoldCommand(app, context);
  cli::AddAdminCommands(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int code = app.exit(error);
    return code == 0 ? cli::kExitOk : cli::kExitUsage;
  }
  return context.exit_code;
}
