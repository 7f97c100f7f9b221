#pragma once
// modelcachectl run by a test as a real process (tests/testing/subprocess.h): its arguments,
// environment and captured output.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/testing/subprocess.h"

namespace modelcache::testing {

std::string ModelcachectlBinary();

struct CtlResult {
  ExitStatus exit;
  std::string out;
  std::string err;
};

// Options for modelcachectl `args` with stdout and stderr in <directory>/ctl-<tag>.out/.err.
// The test's own MODELCACHE_DISABLE / AIOLI_DISABLE_MODEL_CACHE are cleared; `environment`
// ("NAME=value") comes after.
SubprocessOptions CtlOptions(std::vector<std::string> args, std::vector<std::string> environment,
                             const std::filesystem::path& directory, const std::string& tag);

// Waits for a started modelcachectl and collects its output (a test failure if it runs past
// `timeout`, then it is killed).
CtlResult FinishCtl(Subprocess& process, const SubprocessOptions& options,
                    std::chrono::milliseconds timeout);

// Starts modelcachectl and waits for it.
CtlResult RunCtl(std::vector<std::string> args, std::vector<std::string> environment,
                 const std::filesystem::path& directory, const std::string& tag,
                 std::chrono::milliseconds timeout = std::chrono::minutes(3));

}  // namespace modelcache::testing
