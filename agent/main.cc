// modelcache-agent: parse the configuration, start the agent, run until SIGTERM/SIGINT.
#include <CLI/CLI.hpp>

#include "agent/agent_server.h"
#include "agent/config.h"
#include "common/log_fields.h"
#include "common/logging.h"
#include "common/status_format.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{"modelcache node agent: fills the model cache volume and serves pods over gRPC"};
  app.set_version_flag("--version", "modelcache-agent " MODELCACHE_VERSION);
  modelcache::AgentFlags flags;
  modelcache::AddAgentFlags(app, flags);
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<modelcache::AgentConfig> config =
      modelcache::LoadAgentConfig(flags, modelcache::ProcessEnvironment::FromProcess());
  if (!config.ok()) {
    fmt::print(stderr, "modelcache-agent: {}\n", config.status());
    return 2;
  }
  absl::Status logging = modelcache::SetUpLogging(
      {.level = config->log_level, .json = config->log_json, .component = "agent"});
  if (!logging.ok()) {
    fmt::print(stderr, "modelcache-agent: {}\n", logging);
    return 2;
  }
  absl::Status run = modelcache::RunAgentUntilSignal(*config);
  if (!run.ok()) {
    spdlog::critical("agent stopped {}",
                     modelcache::LogFields().Add("error", run).Add("next", "the agent exits with 1"));
    return 1;
  }
  return 0;
}
