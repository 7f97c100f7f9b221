// Fault cases of hf:// sources against the test Hub (tests/testing/hf_hub_server.mjs): a private
// or gated repository without a token, the token kept from the storage host. Each case asserts
// the three promises: a clear error naming what and the key to set (or success), nothing
// partial under models/, every other model untouched.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/concat.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/hf_hub_server.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::AgentProcess;
using testing::CtlResult;

constexpr int kExitRequestFailed = 4;
constexpr char kToken[] = "hf_test_token_0123456789";

class FaultHfSources : public ::testing::Test {
 protected:
  void Start(const std::string& extra_yaml = "") {
    absl::StatusOr<std::unique_ptr<testing::HfHubServer>> hub = testing::HfHubServer::Start();
    if (!hub.ok()) GTEST_SKIP() << "test hub (node) not available: " << hub.status();
    hub_ = *std::move(hub);
    testing::WriteRandomModel(dir_.Path() / "files", {{"w.safetensors", 400'000}, {"config.json", 100}});
    ASSERT_TRUE(hub_->AddRepo("public/other").ok());
    ASSERT_TRUE(hub_->Commit("public/other", dir_.Path() / "files").ok());
    ASSERT_TRUE(hub_->AddRepo("org/private", {.is_private = true, .tokens = {kToken}}).ok());
    ASSERT_TRUE(hub_->Commit("org/private", dir_.Path() / "files").ok());
    ASSERT_TRUE(hub_->AddRepo("org/gated", {.gated = true, .tokens = {kToken}}).ok());
    ASSERT_TRUE(hub_->Commit("org/gated", dir_.Path() / "files").ok());
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = "hf-fault-agent",
         .cache_root = CacheRoot(),
         .socket = dir_.Path() / "run" / "agent.sock",
         .network_allow = testing::LoopbackOrigins(),
         .extra_yaml = Concat("fill: {chunkSize: 64Ki}\nhf: {endpoint: \"", hub_->Endpoint(), "\"", extra_yaml, "}\n")});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    CtlResult other = Fetch("other", "hf://public/other");
    ASSERT_EQ(other.exit_code, 0) << other.err << agent_->Log();
    others_before_ = testing::HashPublishedModels(CacheRoot());
  }

  fs::path CacheRoot() const { return dir_.Path() / "cache"; }

  CtlResult Fetch(const std::string& name, const std::string& source) {
    return testing::RunCtl({.directory = dir_.Path(), .socket = dir_.Path() / "run" / "agent.sock"},
                           {"fetch", "--model", name, "--version", "1", "--source", source, "--timeout", "90s"});
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::HfHubServer> hub_;
  std::unique_ptr<AgentProcess> agent_;
  std::map<std::string, std::string> others_before_;
};

TEST_F(FaultHfSources, PrivateOrGatedRepositoryWithoutATokenIsPermissionDeniedNamingTheKey) {
  Start();
  for (const std::string repo : {"org/private", "org/gated"}) {
    CtlResult result = Fetch("secret", "hf://" + repo);
    EXPECT_EQ(result.exit_code, kExitRequestFailed) << result.err;
    EXPECT_THAT(result.err, HasSubstr("PERMISSION_DENIED: "));
    EXPECT_THAT(result.err, HasSubstr(repo));
    EXPECT_THAT(result.err, HasSubstr("gated or private"));
    EXPECT_THAT(result.err, HasSubstr("hf.tokenFile"));
    EXPECT_THAT(result.err, HasSubstr("HF_TOKEN"));
    EXPECT_FALSE(fs::exists(CacheRoot() / "models" / "secret"));
    EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
    EXPECT_EQ(testing::HashPublishedModels(CacheRoot(), "secret", "1"), others_before_);
  }
}

TEST_F(FaultHfSources, TheTokenIsSentToTheHubAndNeverToTheStorageHost) {
  const fs::path token_file = dir_.Path() / "hf-token";
  std::ofstream(token_file) << kToken << "\n";
  Start(Concat(", tokenFile: \"", token_file.string(), "\""));
  for (const std::string repo : {"org/private", "org/gated"}) {
    const std::string name = repo == "org/private" ? "private" : "gated";
    CtlResult result = Fetch(name, "hf://" + repo);
    ASSERT_EQ(result.exit_code, 0) << result.err << agent_->Log();
    EXPECT_EQ(testing::HashModel(CacheRoot(), name, "1").size(), 2u);
  }
  absl::StatusOr<std::map<std::string, int64_t>> stats = hub_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT((*stats)["storage_range_requests"], 0) << "LFS files came from the storage host";
  EXPECT_EQ((*stats)["storage_token_seen"], 0) << "the storage host saw the Hub token";
  EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
  EXPECT_EQ(testing::HashPublishedModels(CacheRoot(), "private", "1").count("models/other/1/w.safetensors"), 1u);
  EXPECT_THAT(agent_->Log(), ::testing::Not(HasSubstr(kToken))) << "the token is never logged";
}

}  // namespace
}  // namespace modelcache
