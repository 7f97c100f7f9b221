#include "tests/testing/modelcachectl.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

std::unique_ptr<CtlProcess> CtlProcess::Start(const CtlOptions& options,
                                              const std::vector<std::string>& args) {
  // Unique per process: several tests of one binary may share a directory.
  static std::atomic<int> runs{0};
  const std::string tag = "ctl-" + std::to_string(++runs);
  SubprocessOptions process;
  process.argv = {options.binary};
  process.argv.insert(process.argv.end(), args.begin(), args.end());
  process.environment = {
      "MODELCACHE_DISABLE=", "AIOLI_DISABLE_MODEL_CACHE=", "MODELCACHE_TOKEN=",
      // Admin commands fall back on the kubeconfig's token: none from the test's machine.
      "KUBECONFIG=" + (options.directory / "no-kubeconfig").string(), "KUBERNETES_SERVICE_HOST=",
      "HOSTNAME=" + options.hostname,
      "MODELCACHE_COORDINATOR=" + options.coordinator,
      "MODELCACHE_SOCKET=" + (options.socket.empty()
                                  ? (options.directory / "no-agent.sock").string()
                                  : options.socket.string())};
  process.environment.insert(process.environment.end(), options.environment.begin(),
                             options.environment.end());
  process.stdout_path = (options.directory / (tag + ".out")).string();
  process.stderr_path = (options.directory / (tag + ".err")).string();
  absl::StatusOr<std::unique_ptr<Subprocess>> started = Subprocess::Start(process);
  if (!started.ok()) {
    ADD_FAILURE() << started.status();
    return nullptr;
  }
  std::unique_ptr<CtlProcess> ctl(new CtlProcess());
  ctl->process_ = *std::move(started);
  ctl->stdout_path_ = process.stdout_path;
  ctl->stderr_path_ = process.stderr_path;
  ctl->timeout_ = options.timeout;
  return ctl;
}

CtlProcess::~CtlProcess() = default;

CtlResult CtlProcess::Wait() {
  CtlResult result;
  absl::StatusOr<ExitStatus> exit = process_->WaitExit(timeout_);
  EXPECT_TRUE(exit.ok()) << "modelcachectl did not finish: " << exit.status();
  if (exit.ok() && exit->exited) result.exit_code = exit->code;
  result.out = ReadTestFile(stdout_path_);
  result.err = ReadTestFile(stderr_path_);
  return result;
}

CtlResult RunCtl(const CtlOptions& options, const std::vector<std::string>& args) {
  std::unique_ptr<CtlProcess> ctl = CtlProcess::Start(options, args);
  if (ctl == nullptr) return CtlResult{};
  return ctl->Wait();
}

}  // namespace modelcache::testing
