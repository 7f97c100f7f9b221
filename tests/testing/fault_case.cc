#include "tests/testing/fault_case.h"

#include <gmock/gmock.h>

#include "tests/testing/fault_checks.h"

namespace modelcache::testing {

namespace fs = std::filesystem;

void FaultCase::SetUp() {
  cache_root_ = dir_.Path() / "cache";
  PlantPublishedModel(cache_root_, "bystander", "v1",
                      {{"config.json", 300}, {"weights/w.bin", (3u << 20) + 5}});
  bystander_ = HashModels(cache_root_);
  ASSERT_EQ(bystander_.size(), 3u) << "two files and the manifest";
}

void FaultCase::StartAgent(AgentProcessOptions options) {
  options.directory = dir_.Path();
  if (options.node_name == "agent") options.node_name = "fault-node";
  options.cache_root = cache_root_;
  options.socket = dir_.Path() / "agent.sock";
  absl::StatusOr<std::unique_ptr<AgentProcess>> agent = AgentProcess::Start(std::move(options));
  ASSERT_TRUE(agent.ok()) << agent.status();
  agent_ = *std::move(agent);
}

std::vector<std::string> FaultCase::CtlEnvironment(std::vector<std::string> more) const {
  std::vector<std::string> environment;
  if (agent_) environment.push_back("MODELCACHE_SOCKET=" + agent_->Socket().string());
  environment.insert(environment.end(), more.begin(), more.end());
  return environment;
}

CtlResult FaultCase::Fetch(const std::string& model, const std::string& source,
                           std::vector<std::string> more, std::vector<std::string> environment) {
  std::vector<std::string> args = {"fetch", "--model", model, "--version", "v1", "--source", source};
  args.insert(args.end(), more.begin(), more.end());
  return RunCtl(std::move(args), CtlEnvironment(std::move(environment)), dir_.Path(),
                model + "-" + std::to_string(runs_++));
}

void FaultCase::ExpectNothingPartialAndBystanderUntouched(const std::vector<std::string>& failed) {
  EXPECT_THAT(PublishedModelProblems(cache_root_), ::testing::IsEmpty());
  std::map<std::string, std::string> now = HashModels(cache_root_);
  std::map<std::string, std::string> bystander_now;
  for (const auto& [path, digest] : now) {
    if (path.rfind("bystander/", 0) == 0) bystander_now.emplace(path, digest);
  }
  EXPECT_EQ(bystander_now, bystander_);
  for (const std::string& model : failed) {
    EXPECT_FALSE(fs::exists(cache_root_ / "models" / model)) << model << " was published";
    EXPECT_FALSE(fs::exists(cache_root_ / "staging" / (model + "@v1"))) << model << " left staging";
  }
}

}  // namespace modelcache::testing
