#pragma once
// Runs the real modelcachectl for a test, as a pod or an operator would: argv as given, the
// agent socket and coordinator address in its environment, stdout and stderr kept.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/testing/subprocess.h"

namespace modelcache::testing {

struct CtlResult {
  int exit_code = -1;  // -1: did not exit (killed, or not finished within the timeout)
  std::string out;
  std::string err;
};

struct CtlOptions {
  std::filesystem::path directory;  // required: <tag>.out and <tag>.err go here
  std::filesystem::path socket;     // MODELCACHE_SOCKET; empty: a path where no agent listens
  std::string coordinator;          // MODELCACHE_COORDINATOR; empty: unset
  // HOSTNAME for fetch's lease holder; empty: fetch names no holder (no lease is taken).
  std::string hostname;
  std::vector<std::string> environment;  // more "NAME=value" entries
  std::chrono::milliseconds timeout{120'000};
  std::string binary = MODELCACHE_BINARY_DIR "/cli/modelcachectl";
};

// A modelcachectl started and not waited for yet: for several at once (they all start before
// any is waited for). Made as RunCtl makes it.
class CtlProcess {
 public:
  // Records a test failure and returns null if it cannot be started.
  static std::unique_ptr<CtlProcess> Start(const CtlOptions& options,
                                           const std::vector<std::string>& args);
  ~CtlProcess();
  // Waits up to the options' timeout (a test failure if it runs longer; it is then killed).
  CtlResult Wait();

 private:
  CtlProcess() = default;
  std::unique_ptr<Subprocess> process_;
  std::string stdout_path_;
  std::string stderr_path_;
  std::chrono::milliseconds timeout_{0};
};

// Runs `modelcachectl args...` and waits for it. The caching switches of the environment are
// cleared (MODELCACHE_DISABLE, AIOLI_DISABLE_MODEL_CACHE, MODELCACHE_TOKEN, KUBECONFIG pointing
// nowhere, KUBERNETES_SERVICE_HOST) so the test's own
// environment does not leak in. Records a test failure if it cannot be started or hangs.
CtlResult RunCtl(const CtlOptions& options, const std::vector<std::string>& args);

}  // namespace modelcache::testing
