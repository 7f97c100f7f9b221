// The injected init container for real (issue 14): the webhook's pod for a model, its init
// container's command (FetchScript with the init container's own arguments) run against a
// real agent and nginx in a sandbox, then the app container's view checked: every file of the
// model at $MODEL_PATH, byte for byte, from the cache and when the pod opts out.
//
// The sandbox's paths stand for the pod's mounts: <dir>/claim is the cache claim's mount (a
// symlink to the agent's cacheRoot, as the claim is the same volume), <dir>/local the emptyDir
// in the init container, and the app's $MODEL_PATH is that emptyDir mounted elsewhere: the
// test reads it through a second path (<dir>/app-model, a symlink to it) to make sure the links
// do not depend on where the emptyDir is mounted.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "coordinator/webhook/pod_injection.h"
#include "spdlog/fmt/fmt.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kCtlDir = MODELCACHE_BINARY_DIR "/cli";

class WebhookEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path origin_root = dir_.Path() / "origin";
    files_ = testing::WriteRandomModel(origin_root / "m",
                                       {{"config.json", 1234}, {".hidden", 17}, {"weights/w.bin", 300u << 10}});
    ASSERT_TRUE(testing::WriteTestFile(origin_root / "m" / "modelcache.json", testing::HttpListingJson(files_)));
    origin_dir_ = origin_root / "m";
    auto origin = testing::NginxServer::Start({.root = origin_root.string()});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);
    auto agent = testing::AgentProcess::Start({.directory = dir_.Path(),
                                               .node_name = "node-a",
                                               .cache_root = dir_.Path() / "cache",
                                               .socket = dir_.Path() / "run" / "agent.sock",
                                               .network_allow = testing::LoopbackOrigins()});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    fs::create_symlink(dir_.Path() / "cache", dir_.Path() / "claim");
    fs::create_directories(dir_.Path() / "local");
    fs::create_symlink(dir_.Path() / "local", dir_.Path() / "app-model");
  }

  // The webhook's pod for model m@v1 (the app container's env given), as the API server admits it.
  json InjectedPod(const json& app_env) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata",
                 {{"name", "server-1"},
                  {"namespace", "team-a"},
                  {"labels", {{"modelcache.io/inject", "true"}}},
                  {"annotations",
                   {{"modelcache.io/model", "m"}, {"modelcache.io/version", "v1"},
                    {"modelcache.io/source", origin_->BaseUrl() + "/m/"}}}}},
                {"spec", {{"containers", json::array({{{"name", "server"}, {"image", "nginx:1.25"}, {"env", app_env}}})}}}};
    webhook::InjectionSettings settings{.image = "modelcache:test", .claim_name = "models-cache-pvc-modelcache",
                                        .agent_cache_root = (dir_.Path() / "cache").string()};
    auto injected = webhook::InjectedPod(pod, settings);
    EXPECT_TRUE(injected.ok()) << injected.status();
    return injected.ok() ? *injected : json();
  }

  // Runs the init container's command with the sandbox's paths; returns its exit code.
  int RunInitContainer(const json& pod) {
    json init;
    for (const json& container : pod["spec"]["initContainers"]) {
      if (container["name"] == webhook::kFetchContainer) init = container;
    }
    EXPECT_TRUE(init.is_object()) << pod.dump();
    if (!init.is_object()) return -1;
    const std::string local = (dir_.Path() / "local").string();
    testing::SubprocessOptions options;
    // command is [/bin/sh, -c, <script>, <name>]; args are fetch's. The script is the pod's
    // own, made with the sandbox's mounts instead of the pod's.
    EXPECT_EQ(init["command"][2].get<std::string>(),
              webhook::FetchScript((dir_.Path() / "cache").string(), webhook::kCacheMount, webhook::kLocalMount));
    options.argv = {"/bin/sh", "-c",
                    webhook::FetchScript((dir_.Path() / "cache").string(), (dir_.Path() / "claim").string(), local),
                    init["command"][3].get<std::string>()};
    for (const json& arg : init["args"]) {
      std::string text = arg.get<std::string>();
      if (text.rfind(webhook::kLocalMount, 0) == 0) text = local + text.substr(std::string(webhook::kLocalMount).size());
      if (text == "$(MODELCACHE_HOLDER)") text = "team-a/server-1";
      options.argv.push_back(text);
    }
    options.environment = {"PATH=" + kCtlDir + ":/usr/bin:/bin", "MODELCACHE_SOCKET=" + agent_->Socket().string(),
                           "AIOLI_DISABLE_MODEL_CACHE=", "MODELCACHE_COORDINATOR=", "MODELCACHE_TOKEN="};
    for (const json& variable : init["env"]) {
      if (!variable.contains("value")) continue;
      std::string name = variable["name"];
      if (name == "MODELCACHE_SOCKET" || name == "MODELCACHE_HOLDER") continue;
      options.environment.push_back(name + "=" + variable["value"].get<std::string>());
    }
    options.stdout_path = dir_.Join("init.out");
    options.stderr_path = dir_.Join("init.err");
    auto process = testing::Subprocess::Start(options);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return -1;
    auto exit = (*process)->WaitExit(120s);
    EXPECT_TRUE(exit.ok()) << exit.status();
    init_log_ = testing::ReadTestFile(options.stdout_path) + testing::ReadTestFile(options.stderr_path);
    return exit.ok() && exit->exited ? exit->code : -1;
  }

  // Every file of the model, read through the app's $MODEL_PATH, equals the origin's.
  void ExpectModelAtModelPath() {
    fs::path model_path = dir_.Path() / "app-model";
    for (const auto& file : files_) {
      std::string expected = testing::ReadTestFile(origin_dir_ / file.path());
      std::string seen = testing::ReadTestFile(model_path / file.path());
      EXPECT_EQ(seen.size(), expected.size()) << file.path() << "\n" << init_log_;
      EXPECT_TRUE(seen == expected) << file.path() << " differs at $MODEL_PATH\n" << init_log_;
    }
  }

  testing::TempDir dir_;
  std::vector<v1::ManifestFile> files_;
  fs::path origin_dir_;
  std::unique_ptr<testing::NginxServer> origin_;
  std::unique_ptr<testing::AgentProcess> agent_;
  std::string init_log_;
};

TEST_F(WebhookEndToEndTest, ModelPathHoldsTheModelFromTheCache) {
  json pod = InjectedPod(json::array());
  ASSERT_EQ(RunInitContainer(pod), 0) << init_log_;
  ExpectModelAtModelPath();
  // From the cache: the links lead into the claim's mount, and the cache holds the model.
  EXPECT_TRUE(fs::is_symlink(dir_.Path() / "local" / "config.json"));
  EXPECT_EQ(fs::read_symlink(dir_.Path() / "local" / "config.json").string().rfind((dir_.Path() / "claim").string(), 0), 0u)
      << fs::read_symlink(dir_.Path() / "local" / "config.json");
  EXPECT_TRUE(fs::exists(dir_.Path() / "cache" / "models" / "m" / "v1" / "config.json"));
}

TEST_F(WebhookEndToEndTest, ModelPathHoldsTheModelWhenThePodOptsOut) {
  json pod = InjectedPod(json::array({{{"name", "AIOLI_DISABLE_MODEL_CACHE"}, {"value", "true"}}}));
  ASSERT_EQ(RunInitContainer(pod), 0) << init_log_;
  ExpectModelAtModelPath();
  // Downloaded locally: nothing in the cache, the links stay inside the emptyDir.
  EXPECT_FALSE(fs::exists(dir_.Path() / "cache" / "models" / "m" / "v1"));
  EXPECT_EQ(fs::read_symlink(dir_.Path() / "local" / "config.json").string().rfind("/", 0), std::string::npos)
      << fs::read_symlink(dir_.Path() / "local" / "config.json");
}

}  // namespace
}  // namespace modelcache
