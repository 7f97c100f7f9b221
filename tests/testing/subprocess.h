#pragma once
// Runs a program for a test: argv (no shell), environment, stdout/stderr to files. The child
// leads its own process group; destruction kills that group with SIGKILL and reaps the child,
// so a failing test leaves nothing behind.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace modelcache::testing {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  // "NAME=value" entries, added to (and overriding) the test's environment, or replacing it
  // when inherit_environment is false.
  std::vector<std::string> environment;
  bool inherit_environment = true;
  std::string stdout_path;  // empty: /dev/null
  std::string stderr_path;  // empty: /dev/null
  std::string working_directory;  // empty: the test's
};

struct ExitStatus {
  bool exited = false;  // true: ended by exit() with `code`; false: killed by `signal`
  int code = 0;
  int signal = 0;
  bool Success() const { return exited && code == 0; }
  std::string ToString() const;  // "exit 0", "signal 9"
};

class Subprocess {
 public:
  // INVALID_ARGUMENT for an empty argv; INTERNAL (naming the program) if it cannot be started.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const SubprocessOptions& options);
  ~Subprocess();  // SIGKILL to the process group if still running, then reaps
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t Pid() const { return pid_; }
  // Sends `signal` to the child (not its group). FAILED_PRECONDITION once it has been reaped.
  absl::Status Signal(int signal);
  // Waits for the child to end. DEADLINE_EXCEEDED if it is still running after `timeout`.
  absl::StatusOr<ExitStatus> WaitExit(std::chrono::milliseconds timeout);
  // Reaps the child if it ended; true while it runs.
  bool Running();
  // SIGTERM, wait up to `grace`, then SIGKILL to the group. Returns how it ended.
  ExitStatus Terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  bool Reap(bool block);

  pid_t pid_;
  std::optional<ExitStatus> exit_;
};

// A program run to its end, and what it printed.
struct CommandResult {
  ExitStatus exit;
  std::string out;
  std::string err;
};

// Runs `argv` (stdin /dev/null) with stdout and stderr in files under `directory` (named after
// the program and a counter), and reads them back. DEADLINE_EXCEEDED naming the program when it
// is still running after `timeout` (it is killed); INTERNAL when it cannot be started.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv, const std::string& directory,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace modelcache::testing
