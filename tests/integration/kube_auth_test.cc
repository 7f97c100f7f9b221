// Authentication and authorization by Kubernetes (issue #15, "Safe defaults in deploy/"): the
// real modelcache-coordinator with coordinator.kubernetesAuth on, the real agent presenting a
// projected-token file, the real modelcachectl taking the kubeconfig's token, and the test API
// server (tests/testing/kube_api_server.mjs) answering TokenReviews (audiences checked as a real
// server does) and SubjectAccessReviews from the ClusterRoles deploy/ ships, bound to test users.
// Every test ends by checking each API request the coordinator made against the ClusterRole
// deploy/ grants it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "spdlog/fmt/fmt.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/kube_api_server.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/rbac_rules.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::AgentProcess;
using testing::CtlResult;
using testing::KubeApiServer;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;
const std::string kDeployBase = std::string(MODELCACHE_SOURCE_DIR) + "/deploy/base";
constexpr char kAgentUser[] = "system:serviceaccount:modelcache:modelcache-agent";

// Token file lines of the test API server: token,user,uid,"groups"[,"audiences"].
const std::vector<std::string> kTokens = {
    "test-token,test-admin,uid-admin,\"system:masters\"",
    "coordinator-token,system:serviceaccount:modelcache:modelcache-coordinator,uid-c,\"system:serviceaccounts\"",
    // The agents' projected token (audience modelcache), and the same account's API token.
    std::string("agent-token,") + kAgentUser + ",uid-agent,\"system:serviceaccounts\",\"modelcache\"",
    std::string("agent-api-token,") + kAgentUser + ",uid-agent,\"system:serviceaccounts\"",
    // Another ServiceAccount's projected token with the right audience.
    "other-token,system:serviceaccount:team-a:default,uid-other,\"system:serviceaccounts\",\"modelcache\"",
    "alice-token,alice,uid-alice,\"ml-team\"",
    "bob-token,bob,uid-bob,\"ops\"",
    "carol-token,carol,uid-carol,\"ops\"",
};

const absl::StatusOr<std::vector<testing::RbacRule>>& CoordinatorRules() {
  static const absl::StatusOr<std::vector<testing::RbacRule>> rules =
      testing::RenderedClusterRules(kDeployBase, "modelcache", "modelcache-coordinator");
  return rules;
}

class KubeAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::KubectlInstalled()) GTEST_SKIP() << "kubectl is not installed: deploy/'s roles are rendered with it";
    auto server = KubeApiServer::Start({.tokens = kTokens});
    if (!server.ok() && server.status().code() == absl::StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << "no test API server: " << server.status();
    }
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    // alice is bound to modelcache-viewer (through her group), bob to modelcache-admin, carol to
    // nothing: the rules are deploy/'s ClusterRoles, as rendered.
    auto viewer = testing::RenderedClusterRoleRules(kDeployBase, "modelcache-viewer");
    auto admin = testing::RenderedClusterRoleRules(kDeployBase, "modelcache-admin");
    ASSERT_TRUE(viewer.ok()) << viewer.status();
    ASSERT_TRUE(admin.ok()) << admin.status();
    json allow = testing::SubjectAccessAllowRules(*viewer, "ml-team");
    for (const json& rule : testing::SubjectAccessAllowRules(*admin, "bob")) allow.push_back(rule);
    ASSERT_TRUE(server_->Configure({{"allow", allow}}).ok());

    token_file_ = dir_.Join("coordinator-token");
    ASSERT_TRUE(testing::WriteTestFile(token_file_, "coordinator-token"));
    kubeconfig_ = dir_.Join("coordinator-kubeconfig");
    ASSERT_TRUE(testing::WriteTestFile(kubeconfig_, fmt::format(R"(apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: "{}", certificate-authority: "{}"}}
contexts:
- name: test
  context: {{cluster: test, user: coordinator}}
current-context: test
users:
- name: coordinator
  user: {{tokenFile: "{}"}}
)",
                                                                server_->Server(), server_->CaFile(), token_file_)));
  }

  void TearDown() override {
    for (auto& agent : agents_) agent->Stop();
    if (coordinator_) coordinator_->Stop();
    testing::ExpectRequestsAllowed(CoordinatorRules(), RequestLog(), "deploy/base's ClusterRole");
  }

  std::string RequestLog() const { return dir_.Join("kube-requests.jsonl"); }

  // The coordinator as deploy/ configures it (kubernetesAuth on), with a tokens file if given.
  void StartCoordinator(const std::string& tokens_file_text = "") {
    testing::CoordinatorProcessOptions options{.directory = dir_.Path()};
    if (!tokens_file_text.empty()) {
      options.tokens_file = dir_.Path() / "tokens";
      ASSERT_TRUE(testing::WriteTestFile(options.tokens_file, tokens_file_text));
    }
    options.coordinator_extra_yaml =
        "kubernetesAuth: {enabled: true, audience: modelcache, agentServiceAccount: modelcache/modelcache-agent, "
        "cacheFor: 60s, reviewTimeout: 2s}";
    options.extra_yaml = fmt::format("kubernetes: {{enabled: false, kubeconfig: \"{}\", requestLog: \"{}\"}}\n",
                                     kubeconfig_, RequestLog());
    auto coordinator = testing::CoordinatorProcess::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
  }

  // An agent whose coordinatorTokenFile holds `token`, as the projected volume would.
  AgentProcess& StartAgent(const std::string& node, const std::string& token) {
    const std::filesystem::path token_path = dir_.Path() / (node + "-token");
    EXPECT_TRUE(testing::WriteTestFile(token_path, token + "\n"));
    auto agent = AgentProcess::Start({.directory = dir_.Path(),
                                      .node_name = node,
                                      .cache_root = dir_.Path() / ("cache-" + node),
                                      .socket = dir_.Path() / ("run-" + node) / "agent.sock",
                                      .coordinator = coordinator_->Address(),
                                      .coordinator_token_file = token_path});
    EXPECT_TRUE(agent.ok()) << agent.status();
    agents_.push_back(std::move(*agent));
    return *agents_.back();
  }

  // modelcachectl as a Kubernetes user runs it: no --token, the kubeconfig of `token`.
  CtlResult CtlAs(const std::string& token, std::vector<std::string> args) {
    return testing::RunCtl({.directory = dir_.Path(),
                            .coordinator = coordinator_->Address(),
                            .environment = {"KUBECONFIG=" + server_->WriteKubeconfig(token)},
                            .timeout = 60s},
                           args);
  }

  std::vector<json> CoordinatorRequests(const std::string& resource) {
    std::vector<json> matching;
    auto requests = testing::ReadRequestLog(RequestLog());
    if (!requests.ok()) return matching;
    for (const json& request : *requests) {
      if (request.value("resource", "") == resource) matching.push_back(request);
    }
    return matching;
  }

  testing::TempDir dir_;
  std::unique_ptr<KubeApiServer> server_;
  std::string token_file_;
  std::string kubeconfig_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

TEST_F(KubeAuthTest, AgentWithItsProjectedTokenConnects) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  AgentProcess& agent = StartAgent("node-a", "agent-token");
  EXPECT_TRUE(agent.WaitForLogLine("coordinator connected", kDeadline, 50ms)) << agent.Log();
  EXPECT_TRUE(coordinator_->WaitForLogLine(std::string("principal=") + kAgentUser, kDeadline, 50ms))
      << coordinator_->Log();
  EXPECT_FALSE(CoordinatorRequests("tokenreviews").empty());
}

TEST_F(KubeAuthTest, AgentTokenOfAnotherAccountOrAudienceIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  // The agents' own account, but its API token (no modelcache audience); another account's
  // token with the right audience; a token the API server does not know.
  AgentProcess& api_token = StartAgent("node-api", "agent-api-token");
  AgentProcess& other = StartAgent("node-other", "other-token");
  AgentProcess& unknown = StartAgent("node-unknown", "forged");
  // The coordinator says why (the agent's client sees its own cancel: CANCELLED).
  EXPECT_TRUE(coordinator_->WaitForLogLine("is invalid for the target audiences", kDeadline, 50ms))
      << coordinator_->Log();
  EXPECT_TRUE(coordinator_->WaitForLogLine(
      "system:serviceaccount:team-a:default may not Connect: only the agents' ServiceAccount " + std::string(kAgentUser),
      kDeadline, 50ms))
      << coordinator_->Log();
  EXPECT_TRUE(coordinator_->WaitForLogLine("(TokenReview: invalid bearer token)",
                                           kDeadline, 50ms))
      << coordinator_->Log();
  for (const AgentProcess* agent : {&api_token, &other, &unknown}) {
    EXPECT_THAT(agent->Log(), Not(HasSubstr("coordinator connected")));
  }
  CtlResult nodes = CtlAs("bob-token", {"nodes", "--json"});
  EXPECT_EQ(nodes.exit_code, 0) << nodes.err;
  for (const char* node : {"node-api", "node-other", "node-unknown"}) EXPECT_THAT(nodes.out, Not(HasSubstr(node)));
}

TEST_F(KubeAuthTest, ViewerListsButMayNotPurgeAndAdminPurges) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  CtlResult list = CtlAs("alice-token", {"models", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  CtlResult purge = CtlAs("alice-token", {"purge", "llama"});
  EXPECT_EQ(purge.exit_code, 4) << purge.out << purge.err;
  EXPECT_THAT(purge.err, HasSubstr("permission denied"));
  EXPECT_THAT(purge.err, HasSubstr("alice may not Purge"));
  EXPECT_THAT(purge.err, HasSubstr("verb \"delete\" on models.modelcache.io"));
  EXPECT_THAT(purge.err, HasSubstr("ClusterRole modelcache-admin"));
  EXPECT_THAT(purge.err, HasSubstr("the token of kubeconfig")) << "says whose credentials were used";

  CtlResult admin_purge = CtlAs("bob-token", {"purge", "llama"});
  EXPECT_EQ(admin_purge.exit_code, 0) << admin_purge.err;
  CtlResult nobody = CtlAs("carol-token", {"models", "list"});
  EXPECT_EQ(nobody.exit_code, 4) << nobody.err;
  EXPECT_THAT(nobody.err, HasSubstr("verb \"get\" on models.modelcache.io (ClusterRole modelcache-viewer)"));
  // An admin's token is no agent's: it lacks the agents' audience.
  AgentProcess& agent_as_user = StartAgent("node-bob", "bob-token");
  EXPECT_TRUE(coordinator_->WaitForLogLine("call=Connect", kDeadline, 50ms)) << coordinator_->Log();
  EXPECT_THAT(coordinator_->Log(), HasSubstr("UNAUTHENTICATED: token not accepted for audience"));
  EXPECT_THAT(agent_as_user.Log(), Not(HasSubstr("coordinator connected")));
}

TEST_F(KubeAuthTest, AcceptedReviewsAreCachedAndRefusalsAreNot) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  for (int i = 0; i < 3; ++i) {
    CtlResult list = CtlAs("alice-token", {"usage"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
  }
  // The first call: the coordinator's audience (refused), the API server's (accepted), one
  // access review; the next two: from the cache.
  EXPECT_EQ(CoordinatorRequests("tokenreviews").size(), 2u);
  EXPECT_EQ(CoordinatorRequests("subjectaccessreviews").size(), 1u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(CtlAs("alice-token", {"purge", "x"}).exit_code, 4);
  EXPECT_EQ(CoordinatorRequests("subjectaccessreviews").size(), 3u) << "a refusal is asked again each time";
  EXPECT_EQ(CoordinatorRequests("tokenreviews").size(), 2u);
}

TEST_F(KubeAuthTest, ModelcachectlTakesTheKubeconfigTokenUnlessGivenOne) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  // --kubeconfig names the file; the environment has none.
  CtlResult flag = testing::RunCtl({.directory = dir_.Path(), .coordinator = coordinator_->Address()},
                                   {"models", "list", "--kubeconfig", server_->WriteKubeconfig("alice-token")});
  EXPECT_EQ(flag.exit_code, 0) << flag.err;
  CtlResult none = testing::RunCtl({.directory = dir_.Path(), .coordinator = coordinator_->Address()},
                                   {"models", "list"});
  EXPECT_EQ(none.exit_code, 4);
  EXPECT_THAT(none.err, HasSubstr("unauthenticated"));
  EXPECT_THAT(none.err, HasSubstr("no token sent"));
  // --token wins over the kubeconfig: carol's kubeconfig, bob's token.
  CtlResult explicit_token = CtlAs("carol-token", {"purge", "x", "--token", "bob-token"});
  EXPECT_EQ(explicit_token.exit_code, 0) << explicit_token.err;
}

TEST_F(KubeAuthTest, ApiServerDownIsUnavailableNeverAccess) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  CtlResult warm = CtlAs("bob-token", {"purge", "x"});
  EXPECT_EQ(warm.exit_code, 0) << warm.err;
  server_->Stop();
  CtlResult down = CtlAs("alice-token", {"models", "list"});
  EXPECT_EQ(down.exit_code, 4) << down.err;
  EXPECT_THAT(down.err, HasSubstr("unavailable"));
  EXPECT_THAT(down.err, HasSubstr("kubernetes auth: TokenReview failed, the call is refused until the API server answers"));
  EXPECT_THAT(down.out, Not(HasSubstr("NAME")));
  // An answer accepted within cacheFor still holds.
  CtlResult cached = CtlAs("bob-token", {"purge", "x"});
  EXPECT_EQ(cached.exit_code, 0) << cached.err;
  // An agent cannot connect either, and connects once the API server is back.
  AgentProcess& agent = StartAgent("node-a", "agent-token");
  EXPECT_TRUE(coordinator_->WaitForLogLine("call=Connect", kDeadline, 50ms)) << coordinator_->Log();
  EXPECT_THAT(coordinator_->Log(), HasSubstr("UNAVAILABLE: kubernetes auth: TokenReview failed"));
  EXPECT_THAT(agent.Log(), Not(HasSubstr("coordinator connected")));
  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(agent.WaitForLogLine("coordinator connected", 60s, 100ms)) << agent.Log();
  CtlResult back = CtlAs("alice-token", {"models", "list"});
  EXPECT_EQ(back.exit_code, 0) << back.err;
}

TEST_F(KubeAuthTest, TokensFileIsCheckedFirstAndWorksWithoutTheApiServer) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("file-admin admin ops\nfile-agent agent node\n"));
  server_->Stop();
  CtlResult purge = testing::RunCtl({.directory = dir_.Path(), .coordinator = coordinator_->Address()},
                                    {"purge", "x", "--token", "file-admin"});
  EXPECT_EQ(purge.exit_code, 0) << purge.err;
  AgentProcess& agent = StartAgent("node-a", "file-agent");
  EXPECT_TRUE(agent.WaitForLogLine("coordinator connected", kDeadline, 50ms)) << agent.Log();
  EXPECT_TRUE(CoordinatorRequests("tokenreviews").empty()) << "a listed token costs no review";
  ASSERT_TRUE(server_->Restart().ok());
  CtlResult kube_user = CtlAs("alice-token", {"models", "list"});
  EXPECT_EQ(kube_user.exit_code, 0) << kube_user.err << " (a token not in the file goes to the API server)";
}

// Every rule deploy/ grants the coordinator for reviews is used (the cache claims' rules are
// checked by cache_claims_test's EveryRuleDeployGrantsTheCoordinatorIsUsed).
TEST_F(KubeAuthTest, ReviewRulesDeployGrantsAreExactlyTheOnesUsed) {
  const auto& rules = CoordinatorRules();
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  EXPECT_EQ(CtlAs("alice-token", {"models", "list"}).exit_code, 0);
  auto requests = testing::ReadRequestLog(RequestLog());
  ASSERT_TRUE(requests.ok()) << requests.status();
  std::set<std::string> used;
  for (const json& request : *requests) used.insert(testing::GrantFor(request));
  std::set<std::string> review_grants;
  for (const std::string& grant : testing::GrantsOf(*rules)) {
    if (grant.find("reviews/") != std::string::npos) review_grants.insert(grant);
  }
  EXPECT_EQ(review_grants, (std::set<std::string>{"authentication.k8s.io/tokenreviews/create",
                                                  "authorization.k8s.io/subjectaccessreviews/create"}));
  EXPECT_EQ(used, review_grants);
}

}  // namespace
}  // namespace modelcache
