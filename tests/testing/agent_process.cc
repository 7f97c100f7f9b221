#include "tests/testing/agent_process.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/testing/ports.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {
namespace {

std::string ReadIfPresent(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::Status WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

}  // namespace

std::string AgentConfigYaml(const AgentProcessOptions& options) {
  std::string yaml = absl::StrCat("cacheRoot: ", options.cache_root.string(),
                                  "\nsocket: ", options.socket.string(), "\nmetricsAddress: \"",
                                  options.metrics_address, "\"\nnodeName: ", options.node_name,
                                  "\n");
  if (!options.coordinator.empty()) absl::StrAppend(&yaml, "coordinator: ", options.coordinator, "\n");
  if (!options.coordinator_token_file.empty()) {
    absl::StrAppend(&yaml, "coordinatorTokenFile: ", options.coordinator_token_file.string(), "\n");
  }
  absl::StrAppend(&yaml, "log: {level: ", options.log_level, "}\n", options.extra_yaml);
  return yaml;
}

absl::StatusOr<std::unique_ptr<AgentProcess>> AgentProcess::Start(AgentProcessOptions options) {
  if (options.directory.empty() || options.cache_root.empty() || options.socket.empty()) {
    return absl::InvalidArgumentError("AgentProcessOptions: directory, cache_root and socket are required");
  }
  std::unique_ptr<AgentProcess> agent(new AgentProcess(std::move(options)));
  absl::Status launched = agent->Launch();
  if (!launched.ok()) return launched;
  return agent;
}

absl::Status AgentProcess::Restart() {
  if (process_ != nullptr && process_->Running()) {
    return absl::FailedPreconditionError(
        absl::StrCat("agent ", options_.node_name, " still runs (pid ", process_->Pid(), ")"));
  }
  return Launch();
}

std::filesystem::path AgentProcess::ConfigPath() const {
  return options_.directory / (options_.node_name + ".yaml");
}

absl::Status AgentProcess::Launch() {
  absl::Status written = WriteFile(ConfigPath(), AgentConfigYaml(options_));
  if (!written.ok()) return written;
  log_path_ = options_.directory / (options_.node_name + "-" + std::to_string(++starts_) + ".log");
  SubprocessOptions subprocess;
  subprocess.argv = {options_.binary, "--config", ConfigPath().string()};
  subprocess.environment = options_.environment;
  subprocess.stderr_path = log_path_.string();
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(subprocess);
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  bool accepted = PollUntil([&] { return !process_->Running() || UnixSocketAccepts(options_.socket); },
                            options_.start_timeout);
  if (!process_->Running()) {
    return absl::InternalError(absl::StrCat("agent exited (config ", ConfigPath().string(),
                                            "):\n", Log()));
  }
  if (!accepted) {
    return absl::DeadlineExceededError(absl::StrCat("agent socket ", options_.socket.string(),
                                                    " does not accept (config ",
                                                    ConfigPath().string(), "):\n", Log()));
  }
  return absl::OkStatus();
}

std::string AgentProcess::Log() const { return ReadIfPresent(log_path_); }

bool AgentProcess::WaitForLogLine(std::string_view text, std::chrono::milliseconds timeout,
                                  std::chrono::milliseconds interval) const {
  return PollUntil([&] { return Log().find(text) != std::string::npos; }, timeout, interval);
}

}  // namespace modelcache::testing
