#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <cstring>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace modelcache::testing {
namespace {

std::vector<std::string> BuildEnvironment(const SubprocessOptions& options) {
  std::map<std::string, std::string> values;
  auto add = [&](const std::string& entry) {
    size_t equals = entry.find('=');
    if (equals == std::string::npos) return;
    values[entry.substr(0, equals)] = entry;
  };
  if (options.inherit_environment) {
    for (char** entry = environ; *entry != nullptr; ++entry) add(*entry);
  }
  for (const std::string& entry : options.environment) add(entry);
  std::vector<std::string> result;
  for (auto& [name, entry] : values) result.push_back(entry);
  return result;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

std::string ExitStatus::ToString() const {
  return exited ? absl::StrCat("exit ", code) : absl::StrCat("signal ", signal);
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(const SubprocessOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("subprocess: empty argv");
  std::vector<std::string> argv = options.argv;
  std::vector<std::string> environment = BuildEnvironment(options);
  std::vector<char*> argv_pointers = Pointers(argv);
  std::vector<char*> environment_pointers = Pointers(environment);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string out = options.stdout_path.empty() ? "/dev/null" : options.stdout_path;
  const std::string err = options.stderr_path.empty() ? "/dev/null" : options.stderr_path;
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!options.working_directory.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_directory.c_str());
  }

  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Own process group (so the destructor can kill helpers the child forks), default signal
  // dispositions and an empty mask (a test runner may ignore SIGPIPE or block signals).
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int signal : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2}) {
    sigaddset(&defaults, signal);
  }
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  pid_t pid = 0;
  int error = posix_spawnp(&pid, argv[0].c_str(), &actions, &attributes, argv_pointers.data(),
                           environment_pointers.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", std::strerror(error)));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid));
}

Subprocess::~Subprocess() {
  if (exit_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  Reap(/*block=*/true);
}

absl::Status Subprocess::Signal(int signal) {
  if (exit_) return absl::FailedPreconditionError(absl::StrCat("process ", pid_, " already ended"));
  if (::kill(pid_, signal) != 0) {
    return absl::InternalError(absl::StrCat("kill(", pid_, ", ", signal, "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

bool Subprocess::Reap(bool block) {
  if (exit_) return true;
  int status = 0;
  pid_t result;
  do {
    result = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (result < 0 && errno == EINTR);
  if (result == 0) return false;
  ExitStatus exit;
  if (result < 0) {
    exit.exited = true;  // not our child any more (reaped elsewhere): treat as ended
    exit.code = -1;
  } else if (WIFEXITED(status)) {
    exit.exited = true;
    exit.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  } else {
    return false;  // stopped or continued: still alive
  }
  exit_ = exit;
  return true;
}

bool Subprocess::Running() { return !Reap(/*block=*/false); }

absl::StatusOr<ExitStatus> Subprocess::WaitExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!Reap(/*block=*/false)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running after ", timeout.count(), "ms"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return *exit_;
}

ExitStatus Subprocess::Terminate(std::chrono::milliseconds grace) {
  if (!exit_) {
    ::kill(pid_, SIGTERM);
    if (!WaitExit(grace).ok()) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      Reap(/*block=*/true);
    }
  }
  return *exit_;
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv, const std::string& directory,
                                         std::chrono::milliseconds timeout) {
  static std::atomic<int> runs{0};
  if (argv.empty()) return absl::InvalidArgumentError("RunCommand: empty argv");
  const std::string stem = absl::StrCat(directory, "/", std::filesystem::path(argv[0]).filename().string(), "-",
                                        runs.fetch_add(1) + 1);
  SubprocessOptions options{.argv = argv, .stdout_path = stem + ".out", .stderr_path = stem + ".err"};
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  absl::StatusOr<ExitStatus> exit = (*process)->WaitExit(timeout);
  if (!exit.ok()) {
    (*process)->Terminate(std::chrono::milliseconds(100));
    return absl::DeadlineExceededError(absl::StrCat(argv[0], ": ", exit.status().message()));
  }
  return CommandResult{.exit = *exit, .out = ReadTestFile(options.stdout_path), .err = ReadTestFile(options.stderr_path)};
}

}  // namespace modelcache::testing
