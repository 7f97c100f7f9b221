// Caching is opt-in from the first second (issue 15): an agent configured with a coordinator
// that has not sent a caching policy yet (first start, coordinator down, nothing saved) caches
// no model, not even one already on its volume: Ensure answers FAILED_PRECONDITION, says why,
// and `fetch --fallback` downloads locally. The agent says so in its log once. An agent with no
// coordinator configured caches every model (the embedded default). The real agent and
// modelcachectl against nginx on 127.0.0.1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/agent_process.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CtlResult;

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class CachingOptIn : public ::testing::Test {
 protected:
  void SetUp() override {
    files_ = testing::WriteRandomModel(dir_.Path() / "www" / "m",
                                       {{"config.json", 300}, {"weights.bin", 200u << 10}});
    ASSERT_TRUE(testing::WriteTestFile(dir_.Path() / "www" / "m" / "modelcache.json",
                                       testing::HttpListingJson(files_)));
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
        testing::NginxServer::Start({.root = (dir_.Path() / "www").string()});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);
    // A model already on the volume: with no policy known it is not served either.
    testing::PlantPublishedModel(CacheRoot(), "planted", "v1", {{"w.bin", 4096}});
  }

  void StartAgent(std::string coordinator) {
    absl::StatusOr<std::unique_ptr<testing::AgentProcess>> agent = testing::AgentProcess::Start(
        {.directory = dir_.Path(),
         .cache_root = CacheRoot(),
         .socket = dir_.Path() / "run" / "agent.sock",
         .coordinator = std::move(coordinator),
         .network_allow = testing::LoopbackOrigins()});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }

  // The planted model's manifest names http://bystander.invalid/planted/ as its source.
  CtlResult Fetch(const std::string& model, std::vector<std::string> more = {}) {
    const std::string source = model == "planted" ? "http://bystander.invalid/planted/"
                                                  : origin_->BaseUrl() + "/" + model + "/";
    std::vector<std::string> args = {"fetch", "--model", model, "--version", "v1", "--source",
                                     source};
    args.insert(args.end(), more.begin(), more.end());
    return testing::RunCtl({.directory = dir_.Path(), .socket = agent_->Socket()}, args);
  }

  fs::path CacheRoot() const { return dir_.Path() / "cache"; }

  testing::TempDir dir_;
  std::vector<v1::ManifestFile> files_;
  std::unique_ptr<testing::NginxServer> origin_;
  std::unique_ptr<testing::AgentProcess> agent_;
};

TEST_F(CachingOptIn, BeforeAnyPolicyEveryModelIsRefusedAndFetchFallsBackLocally) {
  // A coordinator address where nothing listens: the agent never receives a policy.
  const uint16_t port = testing::FreeTcpPort();
  ASSERT_NE(port, 0);
  ASSERT_NO_FATAL_FAILURE(StartAgent("127.0.0.1:" + std::to_string(port)));

  CtlResult refused = Fetch("m");
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(refused.err, HasSubstr("no caching policy from the coordinator yet"));
  EXPECT_FALSE(fs::exists(CacheRoot() / "models" / "m")) << "filled without a policy";

  // Not even a model already on the volume is served.
  CtlResult planted = Fetch("planted");
  EXPECT_EQ(planted.exit_code, 4) << planted.out;
  EXPECT_THAT(planted.err, HasSubstr("no caching policy from the coordinator yet"));
  EXPECT_EQ(planted.out, "");

  const fs::path dest = dir_.Path() / "local";
  CtlResult fallback = Fetch("m", {"--fallback", "--dest", dest.string()});
  ASSERT_EQ(fallback.exit_code, 0) << fallback.err;
  EXPECT_THAT(fallback.err, HasSubstr("no caching policy from the coordinator yet"));
  EXPECT_EQ(testing::FindPartialModel(dest), "");
  EXPECT_EQ(testing::HashModel(dest, "m", "v1").size(), files_.size());
  EXPECT_FALSE(fs::exists(CacheRoot() / "models" / "m"));

  // Said once in the log, not once per refusal.
  EXPECT_EQ(Count(agent_->Log(), "no caching policy yet"), 1u) << agent_->Log();
}

TEST_F(CachingOptIn, AnAgentWithoutACoordinatorCachesEveryModel) {
  ASSERT_NO_FATAL_FAILURE(StartAgent(""));
  CtlResult fetched = Fetch("m");
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  EXPECT_EQ(fetched.out, (CacheRoot() / "models" / "m" / "v1").string() + "\n");
  CtlResult planted = Fetch("planted");
  EXPECT_EQ(planted.exit_code, 0) << planted.err;
  EXPECT_EQ(Count(agent_->Log(), "no caching policy yet"), 0u);
}

}  // namespace
}  // namespace modelcache
