// Fault cases of issue 11 (§6) about the coordinator: every role may do what it may and no
// more (no token, a wrong one, an agent's token used by a person; reads for viewers, prefetch
// for maintainers, the registry and purges for admins), and a coordinator killed
// with -9 in the middle of a purge records it exactly once after its restart. The real
// coordinator with a tokens file, the real agent connected to it, nginx on 127.0.0.1. Each
// case checks the three promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

#include "tests/testing/coordinator_process.h"
#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/registry_sources.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::CtlResult;

constexpr auto kDeadline = 60s;

size_t Count(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

class FaultCoordinator : public testing::FaultCase {
 protected:
  // nginx with model m, the coordinator with a token per role, the agent connected with its
  // token, and m fetched through the agent and shown in the coordinator's usage.
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FaultCase::SetUp());
    const fs::path www = dir_.Path() / "www";
    files_ = testing::WriteRandomModel(www / "m", {{"config.json", 700}, {"weights.bin", 1 << 20}});
    ASSERT_TRUE(testing::WriteTestFile(www / "m" / "modelcache.json", testing::HttpListingJson(files_)));
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
        testing::NginxServer::Start({.root = www.string()});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);

    ASSERT_TRUE(testing::WriteTestFile(dir_.Path() / "tokens",
                                       "adm admin\nmnt maintainer\nview viewer\nagt agent\n"));
    ASSERT_TRUE(testing::WriteTestFile(dir_.Path() / "agent-token", "agt\n"));
    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start(
            {.directory = dir_.Path() / "coordinator", .tokens_file = dir_.Path() / "tokens"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    // Agents with a coordinator fill a version only from its registered source.
    CtlResult registered = Admin({"models", "set-source", "m@v1", origin_->BaseUrl() + "/m/"}, "adm");
    ASSERT_EQ(registered.exit_code, 0) << registered.err;
    ASSERT_NO_FATAL_FAILURE(StartAgent({.coordinator = coordinator_->Address(),
                                        .coordinator_token_file = dir_.Path() / "agent-token",
                                        .extra_yaml = "coordinatorReportInterval: 1s\n"}));
    ASSERT_TRUE(testing::WaitForRegisteredSources(agent_->LogPath(), 1, kDeadline)) << agent_->Log();
    CtlResult fetched = Fetch("m", origin_->BaseUrl() + "/m/");
    ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent_->Log();
    ASSERT_TRUE(testing::PollUntil(
        [&] { return Admin({"models", "show", "m", "--json"}, "view").out.find("fault-node") !=
                     std::string::npos ||
                     Admin({"usage"}, "view").out.find("fault-node") != std::string::npos; },
        kDeadline))
        << coordinator_->Log();
  }

  // modelcachectl `args` against the coordinator with `token` ("": none).
  CtlResult Admin(std::vector<std::string> args, const std::string& token) {
    if (!token.empty()) {
      args.push_back("--token");
      args.push_back(token);
    }
    testing::CtlOptions options = Ctl();
    options.coordinator = coordinator_->Address();
    return testing::RunCtl(options, args);
  }

  std::vector<v1::ManifestFile> files_;
  std::unique_ptr<testing::NginxServer> origin_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
};

TEST_F(FaultCoordinator, EveryRoleMayDoWhatItsRoleAllowsAndNothingMore) {
  struct Call {
    std::vector<std::string> args;
    std::string token;
    bool allowed;
  };
  const std::vector<std::string> roles_may_read = {"view", "mnt", "adm"};
  std::vector<Call> calls;
  for (const std::vector<std::string>& read : std::vector<std::vector<std::string>>{
           {"usage"}, {"nodes"}, {"models", "list"}, {"audit"}}) {
    calls.push_back({read, "", false});
    calls.push_back({read, "wrong", false});
    calls.push_back({read, "agt", false});  // an agent's token is no person's
    for (const std::string& token : roles_may_read) calls.push_back({read, token, true});
  }
  // Admin only: the registry and purges.
  for (const std::string& token : {"", "wrong", "agt", "view", "mnt"}) {
    calls.push_back({{"enable-caching", "m"}, token, false});
    calls.push_back({{"pin", "m"}, token, false});
    calls.push_back({{"delete", "m"}, token, false});
    calls.push_back({{"purge", "m@v1"}, token, false});
  }
  // Maintainers and admins: the registry's sources, and prefetch.
  const std::vector<std::string> set_source = {"models", "set-source", "m@v1", origin_->BaseUrl() + "/m/"};
  for (const std::string& token : {"", "wrong", "agt", "view"}) calls.push_back({set_source, token, false});
  const std::vector<std::string> prefetch = {"prefetch", "m@v1", "--source", origin_->BaseUrl() + "/m/"};
  for (const std::string& token : {"", "wrong", "agt", "view"}) calls.push_back({prefetch, token, false});
  calls.push_back({prefetch, "mnt", true});
  calls.push_back({set_source, "mnt", true});  // the same source again
  calls.push_back({{"purge", "--dry-run"}, "view", true});
  calls.push_back({{"enable-caching", "m"}, "adm", true});
  calls.push_back({{"pin", "m"}, "adm", true});
  calls.push_back({{"unpin", "m"}, "adm", true});

  for (const Call& call : calls) {
    SCOPED_TRACE(call.args[0] + " with token \"" + call.token + "\"");
    CtlResult result = Admin(call.args, call.token);
    if (call.allowed) {
      EXPECT_EQ(result.exit_code, 0) << result.err;
      continue;
    }
    // Promise 1: refused, and the message says why.
    EXPECT_EQ(result.exit_code, 4) << result.out << result.err;
    EXPECT_THAT(result.err, call.token.empty() || call.token == "wrong"
                                ? HasSubstr("unauthenticated")
                                : HasSubstr("permission denied"));
  }
  // Nothing refused touched the cache: m is still there, whole, and so is the bystander.
  EXPECT_TRUE(fs::exists(cache_root_ / "models" / "m" / "v1"));
  ExpectNothingPartialAndBystanderUntouched();
  EXPECT_EQ(Count(Admin({"audit", "--kind", "purge", "--json"}, "view").out, "\"version\""), 0u);

  // An admin may purge.
  CtlResult purged = Admin({"purge", "m@v1"}, "adm");
  EXPECT_EQ(purged.exit_code, 0) << purged.err;
  EXPECT_TRUE(testing::PollUntil([&] { return !fs::exists(cache_root_ / "models" / "m" / "v1"); },
                                 kDeadline))
      << agent_->Log();
  ExpectNothingPartialAndBystanderUntouched();
}

TEST_F(FaultCoordinator, ACoordinatorKilledMidPurgeRecordsThePurgeExactlyOnce) {
  // The agent cannot act on the purge until the coordinator has been killed and restarted.
  ASSERT_TRUE(agent_->Kill(SIGSTOP).ok());
  CtlResult purge = Admin({"purge", "m@v1"}, "adm");
  EXPECT_EQ(purge.exit_code, 0) << purge.err;
  ASSERT_TRUE(coordinator_->Kill(SIGKILL).ok());
  ASSERT_TRUE(coordinator_->WaitExit(10s).ok());
  ASSERT_TRUE(coordinator_->Restart().ok()) << coordinator_->Log();
  ASSERT_TRUE(agent_->Kill(SIGCONT).ok());

  // The purge survived the kill and ran once.
  EXPECT_TRUE(testing::PollUntil([&] { return !fs::exists(cache_root_ / "models" / "m" / "v1"); },
                                 kDeadline))
      << agent_->Log() << coordinator_->Log();
  std::string audit;
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        audit = Admin({"audit", "--model", "m", "--kind", "purge", "--json"}, "view").out;
        return Count(audit, "\"version\": \"v1\"") >= 1;
      },
      kDeadline))
      << audit << coordinator_->Log();
  // Once the agent has reported its volume without m again, no second row can come.
  EXPECT_TRUE(testing::PollUntil(
      [&] { return Admin({"models", "show", "m"}, "view").out.find("fault-node") == std::string::npos; },
      kDeadline));
  audit = Admin({"audit", "--model", "m", "--kind", "purge", "--json"}, "view").out;
  EXPECT_EQ(Count(audit, "\"version\": \"v1\""), 1u) << audit;
  // Promises 2 and 3: the purge took m whole and nothing else.
  ExpectNothingPartialAndBystanderUntouched();
}

}  // namespace
}  // namespace modelcache
