#pragma once
// The frame of a fault case (tests/fault, issue 11): a cache folder with a bystander model
// planted before the agent starts, the real agent on it (allowed to reach origins on
// loopback), modelcachectl against it, and the checks of promises 2 and 3 (nothing partial
// under models/, the bystander untouched). Each case checks promise 1 (a clear error naming
// what and where) itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/testing/agent_process.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

class FaultCase : public ::testing::Test {
 protected:
  // Plants the bystander (bystander@v1: config.json and weights/w.bin) and hashes it.
  void SetUp() override;

  // Starts the agent (node "fault-node") on cache_root_ with `options` (directory, cache root
  // and socket are filled in; network_allow defaults to the loopback origins). A test
  // failure (use ASSERT_NO_FATAL_FAILURE) if it does not start.
  void StartAgent(AgentProcessOptions options = {});

  // modelcachectl `args` against the agent (if one runs), with `environment` added.
  CtlOptions Ctl(std::vector<std::string> environment = {}) const;
  // modelcachectl fetch --model `model` --version v1 --source `source` `more`..., waited for.
  CtlResult Fetch(const std::string& model, const std::string& source,
                  std::vector<std::string> more = {}, std::vector<std::string> environment = {});

  // Promises 2 and 3: every published model complete and the bystander as it was; nothing of
  // `failed` (models whose fetch failed) published or left in staging.
  void ExpectNothingPartialAndBystanderUntouched(const std::vector<std::string>& failed = {});

  TempDir dir_;
  std::filesystem::path cache_root_;
  std::map<std::string, std::string> bystander_;  // its hashes before the case
  std::unique_ptr<AgentProcess> agent_;  // after dir_: stopped before the folder goes
};

}  // namespace modelcache::testing
