#include "tests/testing/coordinator_process.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
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

}  // namespace

std::string CoordinatorConfigYaml(const CoordinatorProcessOptions& options) {
  std::filesystem::path database =
      options.database.empty() ? options.directory / "c.db" : options.database;
  std::string yaml = absl::StrCat("modelsCacheStorage: ", options.storage_yaml,
                                  "\ncoordinator:\n  listen: 127.0.0.1:", options.port,
                                  "\n  database: ", database.string(), "\n");
  if (!options.tokens_file.empty()) {
    absl::StrAppend(&yaml, "  tokensFile: ", options.tokens_file.string(), "\n");
  }
  if (!options.default_caching.empty()) {
    absl::StrAppend(&yaml, "  defaultCaching: ", options.default_caching, "\n");
  }
  if (!options.coordinator_extra_yaml.empty()) {
    std::string lines = options.coordinator_extra_yaml;
    if (lines.back() != '\n') lines += '\n';
    lines.pop_back();
    absl::StrAppend(&yaml, "  ", absl::StrReplaceAll(lines, {{"\n", "\n  "}}), "\n");
  }
  absl::StrAppend(&yaml, options.extra_yaml);
  return yaml;
}

absl::StatusOr<std::unique_ptr<CoordinatorProcess>> CoordinatorProcess::Start(
    CoordinatorProcessOptions options) {
  if (options.directory.empty()) {
    return absl::InvalidArgumentError("CoordinatorProcessOptions: directory is required");
  }
  if (options.port == 0) options.port = FreeTcpPort();
  std::unique_ptr<CoordinatorProcess> coordinator(new CoordinatorProcess(std::move(options)));
  absl::Status launched = coordinator->Launch();
  if (!launched.ok()) return launched;
  return coordinator;
}

absl::Status CoordinatorProcess::Restart() {
  if (process_ != nullptr && process_->Running()) {
    return absl::FailedPreconditionError(
        absl::StrCat("coordinator still runs (pid ", process_->Pid(), ")"));
  }
  return Launch();
}

std::string CoordinatorProcess::Address() const {
  return absl::StrCat("127.0.0.1:", options_.port);
}

absl::Status CoordinatorProcess::Launch() {
  {
    std::error_code error;
    std::filesystem::create_directories(options_.directory, error);
    std::ofstream out(ConfigPath(), std::ios::binary | std::ios::trunc);
    out << CoordinatorConfigYaml(options_);
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", ConfigPath().string()));
  }
  log_path_ = options_.directory / ("coordinator-" + std::to_string(++starts_) + ".log");
  SubprocessOptions subprocess;
  subprocess.argv = {options_.binary, "--config", ConfigPath().string()};
  subprocess.stderr_path = log_path_.string();
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(subprocess);
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  bool accepted = PollUntil([&] { return !process_->Running() || TcpPortAccepts(options_.port); },
                            options_.start_timeout);
  if (!process_->Running()) {
    return absl::InternalError(absl::StrCat("coordinator exited (config ", ConfigPath().string(),
                                            "):\n", Log()));
  }
  if (!accepted) {
    return absl::DeadlineExceededError(absl::StrCat("coordinator port ", options_.port,
                                                    " does not accept (config ",
                                                    ConfigPath().string(), "):\n", Log()));
  }
  return absl::OkStatus();
}

std::string CoordinatorProcess::Log() const { return ReadIfPresent(log_path_); }

bool CoordinatorProcess::WaitForLogLine(std::string_view text, std::chrono::milliseconds timeout,
                                        std::chrono::milliseconds interval) const {
  return PollUntil([&] { return Log().find(text) != std::string::npos; }, timeout, interval);
}

}  // namespace modelcache::testing
