// Fault cases (issue #17): with a coordinator the registry decides where a model version
// comes from, so a tenant that asks for NAME@VERSION from a source of its own is refused
// before anything is fetched; it cannot pre-fill what every later pod of that version runs.
// The real coordinator, two real agents on one cache folder and modelcachectl against an nginx
// origin on 127.0.0.1 that serves the registered model and the attacker's. Every case asserts
// the three promises: FAILED_PRECONDITION naming the model and both sources (or how to
// register one), nothing partial under models/, every model on the volume untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/store/layout.h"
#include "common/sha256.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/registry_sources.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::AgentProcess;
using testing::CtlResult;

constexpr auto kDeadline = 60s;

class FaultRegistry : public ::testing::Test {
 protected:
  void SetUp() override {
    // The registered model and the attacker's: same file names and sizes, other bytes.
    fs::path origin = dir_.Path() / "origin";
    good_files_ = testing::WriteRandomModel(origin / "good" / "llama",
                                            {{"config.json", 2345}, {"w.bin", 1 << 20}});
    for (const v1::ManifestFile& file : good_files_) {
      v1::ManifestFile& evil = evil_files_.emplace_back(file);
      evil.set_sha256(testing::WriteRandomFile(origin / "evil" / "llama" / file.path(),
                                               file.size(), 1000 + evil_files_.size()));
      ASSERT_NE(evil.sha256(), file.sha256());
    }
    other_files_ = testing::WriteRandomModel(origin / "other", {{"o.bin", 100'000}});
    ASSERT_TRUE(testing::WriteTestFile(origin / "good" / "llama" / "modelcache.json",
                                       testing::HttpListingJson(good_files_)));
    ASSERT_TRUE(testing::WriteTestFile(origin / "evil" / "llama" / "modelcache.json",
                                       testing::HttpListingJson(evil_files_)));
    ASSERT_TRUE(testing::WriteTestFile(origin / "other" / "modelcache.json",
                                       testing::HttpListingJson(other_files_)));
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> nginx =
        testing::NginxServer::Start({.root = origin.string()});
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    origin_ = *std::move(nginx);

    // Caching enabled for every model (the coordinator default here): only the registry
    // stands between a pod and the shared cache.
    ASSERT_TRUE(testing::WriteTestFile(dir_.Path() / "tokens",
                                       "adm admin\nview viewer\nagt agent\n"));
    ASSERT_TRUE(testing::WriteTestFile(dir_.Path() / "agent-token", "agt\n"));
    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start(
            {.directory = dir_.Path(), .tokens_file = dir_.Path() / "tokens"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    for (int i = 0; i < 2; ++i) {
      const std::string node = i == 0 ? "node-a" : "node-b";
      absl::StatusOr<std::unique_ptr<AgentProcess>> started = AgentProcess::Start(
          {.directory = dir_.Path(),
           .node_name = node,
           .cache_root = Shared(),
           .socket = dir_.Path() / ("run-" + node) / "agent.sock",
           .coordinator = coordinator_->Address(),
           .coordinator_token_file = dir_.Path() / "agent-token",
           .network_allow = testing::LoopbackOrigins(),  // the origin listens on 127.0.0.1
           .extra_yaml = "fillLease: {ttl: 2s, pollInterval: 1s}\n"});
      ASSERT_TRUE(started.ok()) << started.status();
      agents_[i] = *std::move(started);
    }

    // An admin registers the two versions the cluster runs.
    for (const auto& [model, source] : {std::pair{"llama@v3", Good()}, {"other@v1", Other()}}) {
      CtlResult registered = Ctl(nullptr, {"models", "set-source", model, source, "--token", "adm"});
      ASSERT_EQ(registered.exit_code, 0) << registered.err;
    }
    for (const std::unique_ptr<AgentProcess>& agent : agents_) {
      ASSERT_TRUE(testing::WaitForRegisteredSources(agent->LogPath(), 2, kDeadline))
          << agent->Log();
    }
  }

  std::string Good() const { return origin_->BaseUrl() + "/good/llama/"; }
  std::string Evil() const { return origin_->BaseUrl() + "/evil/llama/"; }
  std::string Other() const { return origin_->BaseUrl() + "/other/"; }
  fs::path Shared() const { return dir_.Path() / "shared-cache"; }

  CtlResult Ctl(const AgentProcess* agent, const std::vector<std::string>& args) {
    return testing::RunCtl({.directory = dir_.Path(),
                            .socket = agent ? agent->Socket() : fs::path(),
                            .coordinator = coordinator_->Address()},
                           args);
  }
  CtlResult Fetch(const AgentProcess& agent, const std::string& version,
                  std::vector<std::string> more) {
    std::vector<std::string> args = {"fetch", "--model", "llama", "--version", version};
    args.insert(args.end(), more.begin(), more.end());
    return Ctl(&agent, args);
  }

  // Requests nginx logged for the attacker's model.
  size_t EvilRequests() const {
    size_t requests = 0;
    for (const testing::AccessRecord& record : origin_->AccessLog()) {
      if (record.uri.find("/evil/") != std::string::npos) ++requests;
    }
    return requests;
  }

  // The files at `dir` are byte for byte `files`.
  static void ExpectFilesAt(const fs::path& dir, const std::vector<v1::ManifestFile>& files) {
    for (const v1::ManifestFile& file : files) {
      absl::StatusOr<std::string> digest = Sha256OfFile(dir / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << dir / file.path();
    }
  }

  // Nothing of `version` reached the volume: no published folder, no staging, no lock.
  void ExpectNothingOf(const std::string& version) {
    const CacheLayout layout(Shared());
    EXPECT_FALSE(fs::exists(Shared() / "models" / "llama" / version));
    EXPECT_FALSE(fs::exists(layout.JournalPath("llama", version).parent_path()));
    EXPECT_FALSE(fs::exists(layout.LocksDir() / ("llama@" + version + ".lock")));
  }

  testing::TempDir dir_;
  std::vector<v1::ManifestFile> good_files_;
  std::vector<v1::ManifestFile> evil_files_;
  std::vector<v1::ManifestFile> other_files_;
  std::unique_ptr<testing::NginxServer> origin_;
  // After dir_, so stopped (by PID) before their folders go.
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agents_[2];
};

TEST_F(FaultRegistry, AnAttackersSourceIsRefusedOutrightWithACoordinator) {
  CtlResult other = Ctl(agents_[1].get(), {"fetch", "--model", "other", "--version", "v1"});
  ASSERT_EQ(other.exit_code, 0) << other.err << agents_[1]->Log();
  const std::map<std::string, std::string> volume = testing::HashPublishedModels(Shared());
  ASSERT_FALSE(volume.empty());

  // The attacker goes first, through either agent: refused before anything is fetched.
  for (const std::unique_ptr<AgentProcess>& agent : agents_) {
    CtlResult attacker = Fetch(*agent, "v3", {"--source", Evil()});
    EXPECT_EQ(attacker.exit_code, 4) << attacker.out;
    EXPECT_EQ(attacker.out, "") << "no path may be printed";
    EXPECT_THAT(attacker.err, HasSubstr("FAILED_PRECONDITION"));
    EXPECT_THAT(attacker.err, HasSubstr("model llama@v3: source " + Evil() +
                                        " is not the registered source " + Good()));
  }
  // A version nobody registered is refused too, whatever source it names.
  CtlResult unregistered = Fetch(*agents_[0], "v9", {"--source", Evil()});
  EXPECT_EQ(unregistered.exit_code, 4) << unregistered.out;
  EXPECT_THAT(unregistered.err, HasSubstr("model llama@v9: asked for " + Evil()));
  EXPECT_THAT(unregistered.err, HasSubstr("modelcachectl models set-source llama@v9 URI"));
  EXPECT_EQ(EvilRequests(), 0u) << "the agents never asked the attacker's origin";
  ExpectNothingOf("v3");
  ExpectNothingOf("v9");
  EXPECT_EQ(testing::HashPublishedModels(Shared()), volume);
  EXPECT_EQ(testing::FindPartialModel(Shared()), "");

  // The attacker's own way out downloads into its own disk; the shared volume gets nothing.
  const fs::path pod_disk = dir_.Path() / "attacker-disk";
  CtlResult local = Fetch(*agents_[0], "v3", {"--source", Evil(), "--fallback", "--dest",
                                              pod_disk.string()});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.err, HasSubstr("the agent refused"));
  ExpectFilesAt(pod_disk / "models" / "llama" / "v3", evil_files_);
  ExpectNothingOf("v3");

  // The victim asks for the version only and gets the registered model.
  CtlResult victim = Fetch(*agents_[1], "v3", {});
  ASSERT_EQ(victim.exit_code, 0) << victim.err << agents_[1]->Log();
  EXPECT_THAT(victim.out, HasSubstr((Shared() / "models" / "llama" / "v3").string()));
  ExpectFilesAt(Shared() / "models" / "llama" / "v3", good_files_);
  // ... and the attacker, asking again now that it is cached, is still refused: no READY for
  // a source the registry does not name.
  CtlResult again = Fetch(*agents_[0], "v3", {"--source", Evil()});
  EXPECT_EQ(again.exit_code, 4) << again.out;
  EXPECT_THAT(again.err, HasSubstr("is not the registered source " + Good()));
  EXPECT_EQ(testing::HashPublishedModels(Shared(), "llama", "v3"), volume);
  EXPECT_EQ(testing::FindPartialModel(Shared()), "");
}

// The registry itself is out of a pod's reach: only an admin or maintainer token changes it.
TEST_F(FaultRegistry, AnAttackerCannotRegisterItsOwnSource) {
  for (const char* token : {"view", "agt", ""}) {
    std::vector<std::string> args = {"models", "set-source", "llama@v3", Evil()};
    if (*token != '\0') args.insert(args.end(), {"--token", token});
    CtlResult refused = Ctl(nullptr, args);
    EXPECT_EQ(refused.exit_code, 4) << token << refused.out;
    EXPECT_THAT(refused.err, *token != '\0' ? HasSubstr("permission denied")
                                            : HasSubstr("unauthenticated"))
        << token;
  }
  CtlResult show = Ctl(nullptr, {"models", "show", "llama", "--token", "view"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr(Good()));
  EXPECT_THAT(show.out, Not(HasSubstr("/evil/")));
  CtlResult attacker = Fetch(*agents_[0], "v3", {"--source", Evil()});
  EXPECT_EQ(attacker.exit_code, 4) << attacker.out;
  EXPECT_THAT(attacker.err, HasSubstr("is not the registered source " + Good()));
  ExpectNothingOf("v3");
  EXPECT_EQ(EvilRequests(), 0u);
  EXPECT_EQ(testing::FindPartialModel(Shared()), "");
  EXPECT_TRUE(testing::HashPublishedModels(Shared()).empty()) << "nothing was filled";
}

}  // namespace
}  // namespace modelcache
