// modelcache-coordinator: parse the config, start the server, wait for SIGTERM/SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>

#include "common/log_fields.h"
#include "common/logging.h"
#include "common/status_format.h"
#include "coordinator/config.h"
#include "coordinator/server.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{"modelcache coordinator"};
  app.set_version_flag("--version", "modelcache-coordinator " MODELCACHE_VERSION);
  modelcache::CoordinatorFlags flags;
  modelcache::AddCoordinatorFlags(app, flags);
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<modelcache::CoordinatorConfig> config = modelcache::LoadCoordinatorConfig(
      flags, modelcache::ProcessEnvironment::FromProcess());
  if (!config.ok()) {
    fmt::print(stderr, "modelcache-coordinator: {}\n", config.status());
    return 2;
  }
  absl::Status logging = modelcache::SetUpLogging(
      {.level = config->log_level, .json = config->log_json, .component = "coordinator"});
  if (!logging.ok()) {
    fmt::print(stderr, "modelcache-coordinator: {}\n", logging);
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
