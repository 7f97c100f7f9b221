// Leases that follow the pods (issue 14), end to end: the test Kubernetes API server, the real
// coordinator (unused models purged after 2s, checked every second), a real agent on node-a with
// kubernetes.podLeases, and an nginx origin, all on 127.0.0.1. A pod object on the agent's node
// that asks for m@v1 keeps it from the unused purge with no sidecar and no renewal, also while
// the API server is down, and purge and purge --dry-run name that pod; a pod on another node
// protects nothing; once the pod is deleted the next pass purges the model. Every request the agent made is allowed by deploy/'s agent role.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "kube/kube_client.h"
#include "spdlog/fmt/fmt.h"
#include "kube/resource.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/kube_api_server.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/registry_sources.h"
#include "tests/testing/rbac_rules.h"
#include "tests/testing/source_access.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::AgentProcess;
using testing::PollUntil;

const std::string kCtlBinary = MODELCACHE_BINARY_DIR "/cli/modelcachectl";
constexpr auto kDeadline = 30s;

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class PodLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::KubectlInstalled()) GTEST_SKIP() << "kubectl is not installed: the RBAC check renders deploy/ with it";
    auto server = testing::KubeApiServer::Start();
    if (!server.ok() && server.status().code() == absl::StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << "no test API server: " << server.status();
    }
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto admin = kube::KubeClient::Create(server_->Config());
    ASSERT_TRUE(admin.ok()) << admin.status();
    admin_ = *std::move(admin);
    ASSERT_TRUE(admin_->Create(kube::Namespaces(), {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                                    {"metadata", {{"name", "team-a"}}}}).ok());

    fs::path origin_root = dir_.Path() / "origin";
    std::vector<v1::ManifestFile> files =
        testing::WriteRandomModel(origin_root / "m", {{"config.json", 1234}, {"weights/w.bin", 200u << 10}});
    ASSERT_TRUE(testing::WriteTestFile(origin_root / "m" / "modelcache.json", testing::HttpListingJson(files)));
    auto origin = testing::NginxServer::Start({.root = origin_root.string()});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);

    testing::WriteTestFile(dir_.Path() / "tokens", "adm admin\nview viewer\nagt agent\n");
    testing::WriteTestFile(dir_.Path() / "agent-token", "agt\n");
    auto coordinator = testing::CoordinatorProcess::Start(
        {.directory = dir_.Path(),
         .storage_yaml = "{storageSize: 1Gi, checkUnusedCachedModelsEvery: 1s, purgeUnusedCachedModelsAfter: 2s}",
         .tokens_file = dir_.Path() / "tokens"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);

    auto agent = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = "node-a",
         .cache_root = dir_.Path() / "cache",
         .socket = dir_.Path() / "run" / "agent.sock",
         .coordinator = coordinator_->Address(),
         .coordinator_token_file = dir_.Path() / "agent-token",
         .network_allow = testing::LoopbackOrigins(),
         // Short fetch leases: only the pod's lease can keep a model past the 2s rule.
         .extra_yaml = fmt::format("leaseTtl: 1s\nkubernetes: {{podLeases: true, kubeconfig: \"{}\", requestLog: \"{}\"}}\n",
                                   server_->WriteKubeconfig(), RequestLogPath())});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    ASSERT_TRUE(agent_->WaitForLogLine("caching policy from the coordinator", kDeadline)) << agent_->Log();
    for (const char* model : {"m@v1", "m@v2"}) {
      CtlResult registered = Ctl({"models", "set-source", model, Url(), "--token", "adm"});
      ASSERT_EQ(registered.exit_code, 0) << registered.err;
    }
    ASSERT_TRUE(testing::WaitForRegisteredSources(agent_->LogPath(), 2, kDeadline)) << agent_->Log();
  }

  void TearDown() override {
    testing::ExpectObjectsValid(server_.get());
  }

  std::string RequestLogPath() const { return dir_.Join("agent-kube-requests.jsonl"); }
  std::string Url() const { return origin_->BaseUrl() + "/m/"; }
  fs::path ModelDir(const std::string& version) const { return dir_.Path() / "cache" / "models" / "m" / version; }

  CtlResult Ctl(std::vector<std::string> args) {
    std::string tag = std::to_string(++ctl_runs_);
    testing::SubprocessOptions options;
    options.argv = {kCtlBinary};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.environment = {"MODELCACHE_DISABLE=", "AIOLI_DISABLE_MODEL_CACHE=", "HOSTNAME=", "MODELCACHE_TOKEN=",
                           "MODELCACHE_COORDINATOR=" + coordinator_->Address(),
                           "MODELCACHE_SOCKET=" + agent_->Socket().string()};
    options.stdout_path = dir_.Join("ctl-" + tag + ".out");
    options.stderr_path = dir_.Join("ctl-" + tag + ".err");
    CtlResult result;
    auto process = testing::Subprocess::Start(options);
    if (!process.ok()) {
      ADD_FAILURE() << process.status();
      return result;
    }
    auto exit = (*process)->WaitExit(60s);
    EXPECT_TRUE(exit.ok()) << "modelcachectl did not finish: " << exit.status();
    if (exit.ok() && exit->exited) result.exit_code = exit->code;
    result.out = testing::ReadTestFile(options.stdout_path);
    result.err = testing::ReadTestFile(options.stderr_path);
    return result;
  }

  CtlResult Fetch(const std::string& version) {
    return Ctl({"fetch", "--model", "m", "--version", version, "--source", Url()});
  }

  // A pod as a Deployment's ReplicaSet would create it, scheduled to `node`.
  json CreatePod(const std::string& name, const std::string& node, const std::string& version) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata",
                 {{"name", name},
                  {"namespace", "team-a"},
                  {"labels", {{"app", "server"}, {"modelcache.io/inject", "true"}}},
                  {"annotations",
                   {{"modelcache.io/model", "m"}, {"modelcache.io/version", version}, {"modelcache.io/source", Url()}}}}},
                {"spec", {{"nodeName", node}, {"containers", json::array({{{"name", "server"}, {"image", "nginx:1.25"}}})}}}};
    auto created = admin_->Create(kube::Pods(), pod);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : json();
  }

  bool Audited(const std::string& version) {
    std::string audit = Ctl({"audit", "--model", "m", "--kind", "purge", "--json", "--token", "view"}).out;
    return audit.find("\"version\": \"" + version + "\"") != std::string::npos;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::KubeApiServer> server_;
  std::unique_ptr<kube::KubeClient> admin_;
  std::unique_ptr<testing::NginxServer> origin_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agent_;
  int ctl_runs_ = 0;
};

TEST_F(PodLeasesTest, PodOnTheNodeKeepsItsModelFromTheUnusedPurgeUntilItIsDeleted) {
  // The pods first: the lease must be there before the 2s rule could see the model unused.
  json pod = CreatePod("server-1", "node-a", "v1");
  CreatePod("elsewhere-1", "node-b", "v2");  // another node's pod: not this agent's lease
  ASSERT_TRUE(agent_->WaitForLogLine("pod lease taken", kDeadline)) << agent_->Log();
  EXPECT_THAT(agent_->Log(), HasSubstr("pod:team-a/server-1:" + pod["metadata"]["uid"].get<std::string>()));
  EXPECT_THAT(agent_->Log(), Not(HasSubstr("elsewhere-1")));

  CtlResult v1 = Fetch("v1");
  ASSERT_EQ(v1.exit_code, 0) << v1.err << agent_->Log();
  CtlResult v2 = Fetch("v2");
  ASSERT_EQ(v2.exit_code, 0) << v2.err;

  // The free model goes after 2s; the pod's stays, though nothing read it since.
  ASSERT_TRUE(PollUntil([&] { return Audited("v2"); }, kDeadline, 200ms)) << coordinator_->Log();
  EXPECT_TRUE(PollUntil([&] { return !fs::exists(ModelDir("v2")); }, kDeadline, 50ms));
  EXPECT_TRUE(fs::exists(ModelDir("v1")));
  EXPECT_FALSE(Audited("v1"));
  // An admin's purge keeps it too, and says why: the pod that holds it. So does a dry run of
  // the next policy pass, which lists it as unused for longer than 2s but in use by that pod.
  const std::string in_use = "in use: live lease (pod team-a/server-1)";
  CtlResult purge = Ctl({"purge", "m@v1", "--token", "adm"});
  ASSERT_EQ(purge.exit_code, 0) << purge.err;
  EXPECT_THAT(purge.out, HasSubstr(in_use)) << purge.out;
  CtlResult dry_run = Ctl({"purge", "--dry-run", "--token", "adm"});
  ASSERT_EQ(dry_run.exit_code, 0) << dry_run.err;
  EXPECT_THAT(dry_run.out, HasSubstr("kept:")) << dry_run.out;
  EXPECT_THAT(dry_run.out, HasSubstr("m@v1")) << dry_run.out;
  EXPECT_THAT(dry_run.out, HasSubstr("older than 2s; " + in_use)) << dry_run.out;

  // The API server goes away: the agent cannot confirm the pod, and keeps its lease.
  server_->Stop();
  ASSERT_TRUE(agent_->WaitForLogLine("pod leases kept while the API server does not answer", kDeadline))
      << agent_->Log();
  // Two failed attempts later (backoff: seconds, more than the 2s rule and its 1s passes).
  ASSERT_TRUE(PollUntil(
      [&] {
        std::string log = agent_->Log();
        size_t failures = 0;
        for (size_t at = log.find("kubernetes "); at != std::string::npos; at = log.find("kubernetes ", at + 1)) {
          if (log.compare(at, 18, "kubernetes list fa") == 0 || log.compare(at, 18, "kubernetes watch f") == 0) ++failures;
        }
        return failures >= 3;
      },
      kDeadline, 100ms))
      << agent_->Log();
  EXPECT_TRUE(fs::exists(ModelDir("v1")));
  EXPECT_FALSE(Audited("v1"));
  purge = Ctl({"purge", "m@v1", "--token", "adm"});
  EXPECT_THAT(purge.out, HasSubstr(in_use)) << purge.out;

  // Back: the agent resyncs; the pod is deleted, its lease ends and the next pass purges v1.
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(agent_->WaitForLogLine("pod leases resynced", kDeadline)) << agent_->Log();
  auto deleted = admin_->Delete(kube::Pods(), "team-a", "server-1");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  ASSERT_TRUE(agent_->WaitForLogLine("pod lease ended", kDeadline)) << agent_->Log();
  EXPECT_TRUE(PollUntil([&] { return !fs::exists(ModelDir("v1")); }, kDeadline, 50ms)) << coordinator_->Log();
  EXPECT_TRUE(PollUntil([&] { return Audited("v1"); }, kDeadline, 200ms));

  // deploy/'s agent role allows every request the agent made, and the watch was its way in.
  auto rules = testing::RenderedClusterRules(std::string(MODELCACHE_SOURCE_DIR) + "/deploy/base", "modelcache",
                                             "modelcache-agent");
  ASSERT_TRUE(rules.ok()) << rules.status();
  auto requests = testing::ReadRequestLog(RequestLogPath());
  ASSERT_TRUE(requests.ok()) << requests.status();
  std::set<std::string> used;
  for (const json& request : *requests) {
    used.insert(testing::GrantFor(request));
    EXPECT_TRUE(testing::Allowed(*rules, request)) << "deploy/base's agent role does not allow " << request.dump();
    EXPECT_THAT(request["query"].get<std::string>(), HasSubstr("fieldSelector=spec.nodeName%3Dnode-a")) << request.dump();
  }
  EXPECT_TRUE(used.contains("/pods/list"));
  EXPECT_TRUE(used.contains("/pods/watch"));
}

// A pod that ends (Succeeded) drops its lease though its object stays.
TEST_F(PodLeasesTest, EndedPodDropsItsLease) {
  CreatePod("job-1", "node-a", "v1");
  ASSERT_TRUE(agent_->WaitForLogLine("pod lease taken", kDeadline)) << agent_->Log();
  auto ended = admin_->MergePatch(kube::Pods(), "team-a", "job-1", {{"status", {{"phase", "Succeeded"}}}}, "status");
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_TRUE(agent_->WaitForLogLine("pod lease ended", kDeadline)) << agent_->Log();
  EXPECT_THAT(agent_->Log(), HasSubstr("reason=\"pod Succeeded\""));
}

}  // namespace
}  // namespace modelcache
