#pragma once
// What AgentProcess and CoordinatorProcess share: a daemon binary run for a test (through
// tests/testing/subprocess.h) that is ready once a predicate holds, with one stderr log file
// per start (<directory>/<name>-<start>.log), so Log() and WaitForLogLine() see the current
// run only.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"

namespace modelcache::testing {

class DaemonProcess {
 public:
  std::filesystem::path LogPath() const { return log_path_; }
  // The current run's stderr so far ("" before it wrote anything).
  std::string Log() const;
  // Polls Log() for `text` until `timeout`; true once it is there.
  bool WaitForLogLine(std::string_view text, std::chrono::milliseconds timeout,
                      std::chrono::milliseconds interval = std::chrono::milliseconds(50)) const;

  pid_t Pid() const { return process_->Pid(); }
  bool Running() { return process_ != nullptr && process_->Running(); }
  // Sends `signal` (SIGKILL for a crash); see Subprocess::Signal.
  absl::Status Kill(int signal) { return process_->Signal(signal); }
  absl::StatusOr<ExitStatus> WaitExit(std::chrono::milliseconds timeout) {
    return process_->WaitExit(timeout);
  }
  // SIGTERM, then SIGKILL after `grace`; returns how it ended.
  ExitStatus Stop(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    return process_->Terminate(grace);
  }

 protected:
  // `name` ("agent", a node name) names the log files and the errors.
  DaemonProcess(std::string name, std::filesystem::path directory)
      : name_(std::move(name)), directory_(std::move(directory)) {}
  ~DaemonProcess() = default;  // the Subprocess kills the process group if still running

  // Starts `argv` once the previous run has ended (FAILED_PRECONDITION while it runs), then
  // polls `ready` until `timeout`. INTERNAL if it exits first, DEADLINE_EXCEEDED if it is
  // never ready; both name `config` and quote the log.
  absl::Status Launch(std::vector<std::string> argv, std::vector<std::string> environment,
                      const std::function<bool()>& ready, std::chrono::milliseconds timeout,
                      const std::filesystem::path& config);

 private:
  std::string name_;
  std::filesystem::path directory_;
  std::filesystem::path log_path_;
  int starts_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace modelcache::testing
