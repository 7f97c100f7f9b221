#include "tests/testing/modelcachectl_run.h"

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

std::string ModelcachectlBinary() { return std::string(MODELCACHE_BINARY_DIR) + "/cli/modelcachectl"; }

SubprocessOptions CtlOptions(std::vector<std::string> args, std::vector<std::string> environment,
                             const std::filesystem::path& directory, const std::string& tag) {
  SubprocessOptions options;
  options.argv = {ModelcachectlBinary()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.environment = {"MODELCACHE_DISABLE=", "AIOLI_DISABLE_MODEL_CACHE="};
  options.environment.insert(options.environment.end(), environment.begin(), environment.end());
  options.stdout_path = (directory / ("ctl-" + tag + ".out")).string();
  options.stderr_path = (directory / ("ctl-" + tag + ".err")).string();
  return options;
}

CtlResult FinishCtl(Subprocess& process, const SubprocessOptions& options,
                    std::chrono::milliseconds timeout) {
  CtlResult result;
  absl::StatusOr<ExitStatus> exit = process.WaitExit(timeout);
  if (!exit.ok()) {
    ADD_FAILURE() << "modelcachectl did not finish: " << exit.status();
    result.exit = process.Terminate(std::chrono::seconds(1));
  } else {
    result.exit = *exit;
  }
  result.out = ReadTestFile(options.stdout_path);
  result.err = ReadTestFile(options.stderr_path);
  return result;
}

CtlResult RunCtl(std::vector<std::string> args, std::vector<std::string> environment,
                 const std::filesystem::path& directory, const std::string& tag,
                 std::chrono::milliseconds timeout) {
  SubprocessOptions options = CtlOptions(std::move(args), std::move(environment), directory, tag);
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(options);
  if (!process.ok()) {
    ADD_FAILURE() << process.status();
    return {};
  }
  return FinishCtl(**process, options, timeout);
}

}  // namespace modelcache::testing
