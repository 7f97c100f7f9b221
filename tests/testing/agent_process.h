#pragma once
// A real modelcache-agent for integration tests: writes its YAML config from options, starts
// the binary and waits until its gRPC socket accepts. Each start logs stderr to a file of its
// own (see daemon_process.h for Log(), WaitForLogLine(), Kill(), Stop()).
// Restart() starts it again with the same options, on the same cache folder and socket, as a
// crashed or upgraded agent would come back.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/daemon_process.h"

namespace modelcache::testing {

struct AgentProcessOptions {
  std::filesystem::path directory;  // required: <node_name>.yaml and <node_name>-<start>.log go here
  std::string node_name = "agent";  // nodeName:
  std::filesystem::path cache_root;  // required: cacheRoot:
  std::filesystem::path socket;      // required: socket:
  std::string coordinator;           // coordinator: host:port; empty: none
  std::filesystem::path coordinator_token_file;  // coordinatorTokenFile:; empty: none
  std::string metrics_address;       // metricsAddress: ("" turns the HTTP server off)
  std::string log_level = "info";    // log: {level: ...}
  // network: {allow: [...]}, e.g. testing::LoopbackOrigins() (source_access.h) for origins on
  // 127.0.0.1; empty: the agent's default, which refuses them.
  std::vector<std::string> network_allow;
  std::vector<std::string> network_resolve;  // network: {resolve: [...]} ("HOST:PORT:ADDRESS")
  std::vector<std::filesystem::path> file_sources;  // fileSources: [...]; empty: no file://
  std::string extra_yaml;            // appended verbatim after the keys above
  // "NAME=value" entries added to the agent's environment (see SubprocessOptions).
  std::vector<std::string> environment;
  std::string binary = MODELCACHE_BINARY_DIR "/agent/modelcache-agent";
  std::chrono::milliseconds start_timeout{30'000};  // for the socket to accept
};

class AgentProcess : public DaemonProcess {
 public:
  // Writes the config and starts the agent, then waits until the socket accepts. An error
  // (INTERNAL, or DEADLINE_EXCEEDED after start_timeout) names the config and quotes the log.
  static absl::StatusOr<std::unique_ptr<AgentProcess>> Start(AgentProcessOptions options);
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  // Starts the agent again with the same options (config rewritten, a new log file) once
  // the current run has ended (Stop() or Kill() + WaitExit()). FAILED_PRECONDITION while it
  // still runs; otherwise as Start().
  absl::Status Restart();
  // As Restart(), with new options for the same agent (another cache root, more YAML). The
  // directory and node name, which name its files, stay those of Start().
  absl::Status Restart(AgentProcessOptions options);

  const AgentProcessOptions& Options() const { return options_; }
  const std::filesystem::path& Socket() const { return options_.socket; }
  const std::filesystem::path& CacheRoot() const { return options_.cache_root; }
  const std::string& NodeName() const { return options_.node_name; }
  std::filesystem::path ConfigPath() const;

 private:
  explicit AgentProcess(AgentProcessOptions options)
      : DaemonProcess(options.node_name, options.directory), options_(std::move(options)) {}

  AgentProcessOptions options_;
};

// The agent YAML that AgentProcess writes for `options`.
std::string AgentConfigYaml(const AgentProcessOptions& options);

}  // namespace modelcache::testing
