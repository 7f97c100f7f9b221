#pragma once
// A real modelcache-coordinator for integration tests: writes its YAML config from options,
// starts the binary and waits until its port accepts. Each start logs to a file of its own
// (see daemon_process.h for Log(), WaitForLogLine(), Kill(), Stop()).
// Restart() brings it back on the same port and database, as agents keep its address.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/daemon_process.h"

namespace modelcache::testing {

struct CoordinatorProcessOptions {
  std::filesystem::path directory;  // required: coordinator.yaml, coordinator-<start>.log, c.db
  uint16_t port = 0;                // listen: 127.0.0.1:<port>; 0: a free port, kept across restarts
  // The flow map after modelsCacheStorage: (purge settings).
  std::string storage_yaml =
      "{storageSize: 10Gi, checkUnusedCachedModelsEvery: 1h, purgeUnusedCachedModelsAfter: 1d}";
  std::filesystem::path database;     // empty: <directory>/c.db
  std::filesystem::path tokens_file;  // tokensFile:; empty: none (no authentication)
  std::string default_caching = "enabled";  // defaultCaching:; empty: the key is left out
  std::string coordinator_extra_yaml;  // more "key: value" lines under coordinator:, unindented
  std::string extra_yaml;              // appended verbatim at the top level
  std::string binary = MODELCACHE_BINARY_DIR "/coordinator/modelcache-coordinator";
  std::chrono::milliseconds start_timeout{30'000};  // for the port to accept
};

class CoordinatorProcess : public DaemonProcess {
 public:
  // Writes the config, starts the coordinator and waits until its port accepts. An error names
  // the config and quotes the log.
  static absl::StatusOr<std::unique_ptr<CoordinatorProcess>> Start(CoordinatorProcessOptions options);
  CoordinatorProcess(const CoordinatorProcess&) = delete;
  CoordinatorProcess& operator=(const CoordinatorProcess&) = delete;

  // Starts it again with the same options (same port and database, a new log file) once the
  // current run has ended. FAILED_PRECONDITION while it still runs.
  absl::Status Restart();

  const CoordinatorProcessOptions& Options() const { return options_; }
  uint16_t Port() const { return options_.port; }
  std::string Address() const;  // "127.0.0.1:<port>"
  std::filesystem::path ConfigPath() const { return options_.directory / "coordinator.yaml"; }

 private:
  explicit CoordinatorProcess(CoordinatorProcessOptions options)
      : DaemonProcess("coordinator", options.directory), options_(std::move(options)) {}

  CoordinatorProcessOptions options_;
};

// The coordinator YAML that CoordinatorProcess writes for `options` (port already chosen).
std::string CoordinatorConfigYaml(const CoordinatorProcessOptions& options);

}  // namespace modelcache::testing
