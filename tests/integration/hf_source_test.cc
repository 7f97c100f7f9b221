// hf:// through the real agent and modelcachectl against the test Hub (tests/testing/
// hf_hub_server.mjs), which is first checked against the official @huggingface/hub client so it
// behaves as the Hub that client knows: revision pinned to a commit, branch moved mid-fill,
// expired storage URLs resolved again, 429 with Retry-After, allow/ignore, HF_ENDPOINT, the
// local fallback.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/hf_hub_server.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/oci_registry.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::AgentProcess;
using testing::CtlResult;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

const std::string kToolsDir = std::string(MODELCACHE_SOURCE_DIR) + "/build/tools";

class HfSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testing::HfHubServer>> hub = testing::HfHubServer::Start();
    if (!hub.ok()) GTEST_SKIP() << "test hub (node) not available: " << hub.status();
    hub_ = *std::move(hub);
    // Two LFS weights of several chunks (64 KiB chunks below) and two small git files.
    files_v1_ = testing::WriteRandomModel(dir_.Path() / "v1", {{"model-00001.safetensors", 700'000},
                                                                {"sub/model-00002.safetensors", 300'000},
                                                                {"original/consolidated.pth", 200'000}});
    std::ofstream(dir_.Path() / "v1" / "config.json") << R"({"model_type": "test"})";
    testing::WriteRandomModel(dir_.Path() / "v2", {{"model-00001.safetensors", 500'000}});
    ASSERT_TRUE(hub_->AddRepo("org/model").ok());
    absl::StatusOr<std::string> commit = hub_->Commit("org/model", dir_.Path() / "v1");
    ASSERT_TRUE(commit.ok()) << commit.status();
    commit_v1_ = *commit;
  }

  void StartAgent(const std::string& extra_yaml = "", std::vector<std::string> environment = {},
                  bool endpoint_in_config = true) {
    std::string yaml = "fill: {chunkSize: 64Ki, concurrency: 4}\n" + extra_yaml;
    if (endpoint_in_config) yaml += absl::StrCat("hf: {endpoint: \"", hub_->Endpoint(), "\"}\n");
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent =
        AgentProcess::Start({.directory = dir_.Path(),
                             .node_name = "hf-agent",
                             .cache_root = CacheRoot(),
                             .socket = dir_.Path() / "run" / "agent.sock",
                             .network_allow = testing::LoopbackOrigins(),
                             .extra_yaml = yaml,
                             .environment = std::move(environment)});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }

  fs::path CacheRoot() const { return dir_.Path() / "cache"; }

  CtlResult Ctl(std::vector<std::string> args, std::vector<std::string> environment = {}) {
    return testing::RunCtl({.directory = dir_.Path(), .socket = dir_.Path() / "run" / "agent.sock",
                            .environment = std::move(environment)},
                           args);
  }

  CtlResult Fetch(const std::string& name, const std::string& source, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"fetch", "--model", name, "--version", "1", "--source", source,
                                     "--timeout", "120s"};
    args.insert(args.end(), more.begin(), more.end());
    return Ctl(args);
  }

  // The published model holds exactly `paths` of the v1 folder, byte for byte.
  void ExpectModelHolds(const std::string& name, const std::vector<std::string>& paths) {
    const fs::path model = CacheRoot() / "models" / name / "1";
    std::map<std::string, std::string> published = testing::HashModel(CacheRoot(), name, "1");
    EXPECT_EQ(published.size(), paths.size());
    for (const std::string& path : paths) {
      EXPECT_EQ(ReadFile(model / path), ReadFile(dir_.Path() / "v1" / path)) << path;
    }
    EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
  }

  int64_t Stat(const std::string& name) {
    absl::StatusOr<std::map<std::string, int64_t>> stats = hub_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? (*stats)[name] : -1;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::HfHubServer> hub_;
  std::unique_ptr<AgentProcess> agent_;
  std::vector<v1::ManifestFile> files_v1_;
  std::string commit_v1_;
};

const std::vector<std::string> kAllFiles = {"config.json", "model-00001.safetensors",
                                            "original/consolidated.pth", "sub/model-00002.safetensors"};

TEST_F(HfSourceTest, TheOfficialClientListsAndDownloadsFromTheTestHub) {
  if (!fs::exists(kToolsDir + "/node_modules/@huggingface/hub/package.json")) {
    GTEST_SKIP() << "@huggingface/hub is not installed in build/tools (run scripts/setup.sh)";
  }
  ASSERT_TRUE(hub_->SetOptions(R"({"pageSize": 2})").ok()) << "the client must follow the Link pages";
  for (const std::string path : {"model-00001.safetensors", "config.json"}) {
    testing::SubprocessOptions options;
    options.argv = {"node", std::string(MODELCACHE_SOURCE_DIR) + "/tests/testing/hf_hub_client_check.mjs",
                    kToolsDir, hub_->Endpoint(), "org/model", "main", path};
    options.stdout_path = (dir_.Path() / "client.out").string();
    options.stderr_path = (dir_.Path() / "client.err").string();
    absl::StatusOr<std::unique_ptr<testing::Subprocess>> client = testing::Subprocess::Start(options);
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<testing::ExitStatus> exit = (*client)->WaitExit(std::chrono::seconds(60));
    ASSERT_TRUE(exit.ok()) << exit.status();
    const std::string out = ReadFile(dir_.Path() / "client.out");
    ASSERT_TRUE(exit->Success()) << out << ReadFile(dir_.Path() / "client.err");
    for (const std::string& listed : kAllFiles) EXPECT_THAT(out, HasSubstr("file " + listed + " ")) << out;
    const fs::path local = dir_.Path() / "v1" / path;
    EXPECT_THAT(out, HasSubstr(absl::StrCat("downloaded ", path, " ", testing::Sha256Hex(ReadFile(local)))));
  }
}

TEST_F(HfSourceTest, FillsTheCommitTheBranchPointsToAndStatShowsIt) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_TRUE(hub_->SetOptions(R"({"pageSize": 2})").ok());
  CtlResult fetch = Fetch("hf-model", "hf://org/model");
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  ExpectModelHolds("hf-model", kAllFiles);
  EXPECT_GT(Stat("storage_range_requests"), 10) << "LFS files come in parallel ranges from storage";
  EXPECT_EQ(Stat("storage_token_seen"), 0);
  CtlResult stat = Ctl({"stat", "--model", "hf-model", "--version", "1"});
  ASSERT_EQ(stat.exit_code, 0) << stat.err;
  EXPECT_THAT(stat.out, HasSubstr("revision:     " + commit_v1_));
  // The same source written another way is a hit; another revision is not the same source.
  EXPECT_EQ(Fetch("hf-model", "hf://org/model@main").exit_code, 0);
  CtlResult other = Fetch("hf-model", "hf://org/model@v2");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_THAT(other.err, HasSubstr("FAILED_PRECONDITION"));
}

TEST_F(HfSourceTest, ABranchMovedDuringTheFillDoesNotMixCommits) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  absl::StatusOr<std::string> v2 = hub_->Commit("org/model", dir_.Path() / "v2", "next");
  ASSERT_TRUE(v2.ok()) << v2.status();
  ASSERT_TRUE(hub_->SetOptions(absl::StrCat(R"({"moveBranch": {"id": "org/model", "branch": "main", "commit": ")",
                                            *v2, R"(", "afterStorageRequests": 2}})"))
                  .ok());
  CtlResult fetch = Fetch("moved", "hf://org/model");
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  EXPECT_EQ(Stat("branch_moves"), 1) << "main moved while the fill ran";
  ExpectModelHolds("moved", kAllFiles);
  CtlResult stat = Ctl({"stat", "--model", "moved", "--version", "1"});
  EXPECT_THAT(stat.out, HasSubstr(commit_v1_));
}

TEST_F(HfSourceTest, AnExpiredStorageUrlIsResolvedAgain) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  // Each signed URL serves two requests, then answers 403 as an expired signature does.
  ASSERT_TRUE(hub_->SetOptions(R"({"urlMaxUses": 2})").ok());
  CtlResult fetch = Fetch("expiring", "hf://org/model");
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  ExpectModelHolds("expiring", kAllFiles);
  EXPECT_GT(Stat("storage_expired"), 0);
  EXPECT_GT(Stat("resolve_requests"), 4) << "files were resolved again after their URL expired";
}

TEST_F(HfSourceTest, RateLimitIsWaitedOutAsRetryAfterAsks) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_TRUE(hub_->SetOptions(R"({"rateLimit": {"count": 1, "retryAfter": 2}})").ok());
  CtlResult fetch = Fetch("limited", "hf://org/model");
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  EXPECT_EQ(Stat("hub_rate_limited"), 1);
  EXPECT_GE(Stat("hub_wait_after_429_ms"), 1900) << "the next request came before Retry-After: 2";
  ExpectModelHolds("limited", kAllFiles);
}

TEST_F(HfSourceTest, AllowAndIgnorePatternsPickFiles) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  CtlResult fetch = Fetch("picked", "hf://org/model?allow=*.safetensors,*.json&ignore=original/");
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  ExpectModelHolds("picked", {"config.json", "model-00001.safetensors", "sub/model-00002.safetensors"});
  CtlResult sub = Fetch("sub", "hf://org/model/sub");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_EQ(ReadFile(CacheRoot() / "models/sub/1/model-00002.safetensors"),
            ReadFile(dir_.Path() / "v1/sub/model-00002.safetensors"));
}

TEST_F(HfSourceTest, HfEndpointFromTheEnvironmentSelectsTheMirror) {
  ASSERT_NO_FATAL_FAILURE(StartAgent("", {"HF_ENDPOINT=" + hub_->Endpoint()}, /*endpoint_in_config=*/false));
  CtlResult fetch = Fetch("mirror", "hf://org/model");
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  ExpectModelHolds("mirror", kAllFiles);
}

TEST_F(HfSourceTest, LocalFallbackFillsWithProgressWithoutAnAgent) {
  const fs::path dest = dir_.Path() / "local";
  CtlResult fetch = Ctl({"fetch", "--model", "local", "--version", "1", "--source", "hf://org/model@" + commit_v1_,
                         "--dest", dest.string()},
                        {"MODELCACHE_DISABLE=true", "HF_ENDPOINT=" + hub_->Endpoint()});
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err;
  EXPECT_THAT(fetch.err, HasSubstr("disabled"));
  const fs::path model = fs::path(fetch.out.substr(0, fetch.out.find('\n')));
  for (const std::string& path : kAllFiles) {
    EXPECT_EQ(ReadFile(model / path), ReadFile(dir_.Path() / "v1" / path)) << path;
  }
}

}  // namespace
}  // namespace modelcache
