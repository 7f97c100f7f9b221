// modelcache-coordinator: parse the config, start the server, wait for SIGTERM/SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/logging.h"
#include "common/status_format.h"
#include "coordinator/config.h"
#include "coordinator/service.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{"modelcache coordinator"};
  std::string config_path;
  std::string log_level = "info";
  bool log_json = false;
  app.add_option("--config", config_path, "YAML configuration file")->required();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_flag("--log-json", log_json, "JSON log lines");
  CLI11_PARSE(app, argc, argv);

  absl::Status logging = modelcache::SetUpLogging({log_level, log_json, "coordinator"});
  if (!logging.ok()) {
    std::fprintf(stderr, "modelcache-coordinator: %s\n", std::string(logging.message()).c_str());
    return 2;
  }
  absl::StatusOr<modelcache::CoordinatorConfig> config =
      modelcache::LoadCoordinatorConfig(config_path);
  if (!config.ok()) {
    spdlog::critical("{}", config.status());
    return 2;
  }

  // Block the stop signals in every thread; main waits for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  modelcache::SystemClock clock;
  auto server = modelcache::CoordinatorServer::Start(*config, clock);
  if (!server.ok()) {
    spdlog::critical("{}", server.status());
    return 1;
  }
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("signal {}: shutting down", received);
  (*server)->Shutdown();
  return 0;
}
