// modelcache-coordinator: parse the config, start the server, wait for SIGTERM/SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "common/log_fields.h"
#include "common/logging.h"
#include "common/status_format.h"
#include "coordinator/config.h"
#include "coordinator/service.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{"modelcache coordinator"};
  app.set_version_flag("--version", "modelcache-coordinator " MODELCACHE_VERSION);
  std::string config_path;
  std::string log_level;  // "": the config's (or MODELCACHE_LOG_LEVEL's)
  bool log_json = false;
  app.add_option("--config", config_path, "YAML configuration file")->required();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error (overrides log.level)");
  app.add_flag("--log-json", log_json, "JSON log lines (overrides log.json)");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<modelcache::CoordinatorConfig> config =
      modelcache::LoadCoordinatorConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "modelcache-coordinator: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  auto variable = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value != nullptr ? value : "");
  };
  absl::Status logging = modelcache::ApplyLogEnvironment(
      variable(modelcache::kLogLevelVariable), variable(modelcache::kLogJsonVariable),
      config->log_level, config->log_json);
  if (!log_level.empty()) config->log_level = log_level;
  if (log_json) config->log_json = true;
  if (logging.ok()) {
    logging = modelcache::SetUpLogging(
        {.level = config->log_level, .json = config->log_json, .component = "coordinator"});
  }
  if (!logging.ok()) {
    std::fprintf(stderr, "modelcache-coordinator: %s\n", std::string(logging.message()).c_str());
    return 2;
  }

  // Block the stop signals in every thread; main waits for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  config->kubernetes.environment = modelcache::kube::KubeEnvironment::FromLookup(std::getenv);
  modelcache::SystemClock clock;
  auto server = modelcache::CoordinatorServer::Start(*config, clock);
  if (!server.ok()) {
    spdlog::critical("coordinator not started {}",
                     modelcache::LogFields()
                         .Add("error", server.status())
                         .Add("next", "the coordinator exits with 1"));
    return 1;
  }
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("coordinator shutting down {}", modelcache::LogFields().Add("signal", received));
  (*server)->Shutdown();
  return 0;
}
