#include "tests/testing/daemon_process.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {

std::string DaemonProcess::Log() const {
  // Not ReadTestFile: a log not written yet is "", not a test failure.
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

bool DaemonProcess::WaitForLogLine(std::string_view text, std::chrono::milliseconds timeout,
                                   std::chrono::milliseconds interval) const {
  return PollUntil([&] { return Log().find(text) != std::string::npos; }, timeout, interval);
}

absl::Status DaemonProcess::Launch(std::vector<std::string> argv,
                                   std::vector<std::string> environment,
                                   const std::function<bool()>& ready,
                                   std::chrono::milliseconds timeout,
                                   const std::filesystem::path& config) {
  if (Running()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name_, " still runs (pid ", process_->Pid(), ")"));
  }
  log_path_ = directory_ / absl::StrCat(name_, "-", ++starts_, ".log");
  SubprocessOptions options;
  options.argv = std::move(argv);
  options.environment = std::move(environment);
  options.stderr_path = log_path_.string();
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  bool is_ready = PollUntil([&] { return !process_->Running() || ready(); }, timeout);
  if (!process_->Running()) {
    return absl::InternalError(
        absl::StrCat(name_, " exited (config ", config.string(), "):\n", Log()));
  }
  if (!is_ready) {
    return absl::DeadlineExceededError(absl::StrCat(
        name_, " not ready after ", timeout.count(), " ms (config ", config.string(), "):\n", Log()));
  }
  return absl::OkStatus();
}

}  // namespace modelcache::testing
