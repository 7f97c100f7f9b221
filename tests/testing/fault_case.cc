#include "tests/testing/fault_case.h"

#include "tests/testing/cache_volume.h"
#include "tests/testing/source_access.h"

namespace modelcache::testing {

namespace fs = std::filesystem;

namespace {

std::map<std::string, std::string> BystanderHashes(const fs::path& cache_root) {
  std::map<std::string, std::string> hashes;
  for (const auto& [path, digest] : HashPublishedModels(cache_root)) {
    if (path.rfind("models/bystander/", 0) == 0) hashes.emplace(path, digest);
  }
  return hashes;
}

}  // namespace

void FaultCase::SetUp() {
  cache_root_ = dir_.Path() / "cache";
  PlantPublishedModel(cache_root_, "bystander", "v1",
                      {{"config.json", 300}, {"weights/w.bin", (3u << 20) + 5}});
  bystander_ = BystanderHashes(cache_root_);
  ASSERT_EQ(bystander_.size(), 3u) << "two files and the manifest";
}

void FaultCase::StartAgent(AgentProcessOptions options) {
  options.directory = dir_.Path();
  if (options.node_name == "agent") options.node_name = "fault-node";
  options.cache_root = cache_root_;
  options.socket = dir_.Path() / "agent.sock";
  if (options.network_allow.empty()) options.network_allow = LoopbackOrigins();
  absl::StatusOr<std::unique_ptr<AgentProcess>> agent = AgentProcess::Start(std::move(options));
  ASSERT_TRUE(agent.ok()) << agent.status();
  agent_ = *std::move(agent);
}

CtlOptions FaultCase::Ctl(std::vector<std::string> environment) const {
  CtlOptions options;
  options.directory = dir_.Path();
  if (agent_) options.socket = agent_->Socket();
  options.environment = std::move(environment);
  return options;
}

CtlResult FaultCase::Fetch(const std::string& model, const std::string& source,
                           std::vector<std::string> more, std::vector<std::string> environment) {
  std::vector<std::string> args = {"fetch", "--model", model, "--version", "v1", "--source", source};
  args.insert(args.end(), more.begin(), more.end());
  return RunCtl(Ctl(std::move(environment)), args);
}

void FaultCase::ExpectNothingPartialAndBystanderUntouched(const std::vector<std::string>& failed) {
  EXPECT_EQ(FindPartialModel(cache_root_), "");
  EXPECT_EQ(BystanderHashes(cache_root_), bystander_);
  for (const std::string& model : failed) {
    EXPECT_FALSE(fs::exists(cache_root_ / "models" / model)) << model << " was published";
    EXPECT_FALSE(fs::exists(cache_root_ / "staging" / (model + "@v1"))) << model << " left staging";
  }
}

}  // namespace modelcache::testing
