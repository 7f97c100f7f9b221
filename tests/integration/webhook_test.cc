// The admission webhook (issue 14), over HTTPS against the real coordinator: AdmissionReviews
// built from the pod template of `kubectl create deployment --dry-run=client -o json`, posted
// with curl; the answered RFC 6902 patch applied, and the patched pod created in the test API
// server, which validates every object it stores (kube_validation.mjs).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "kube/kube_client.h"
#include "spdlog/fmt/fmt.h"
#include "kube/resource.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/kube_api_server.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certificates.h"

namespace modelcache {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct Output {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::KubectlInstalled()) GTEST_SKIP() << "kubectl is not installed: the pods come from its dry run";
    if (Run({"curl", "--version"}).exit_code != 0) GTEST_SKIP() << "curl is not installed: it posts the reviews";
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

    ASSERT_TRUE(certificates_.ok()) << certificates_.status();
    testing::CoordinatorProcessOptions options;
    options.directory = dir_.Path() / "coordinator";
    options.extra_yaml = fmt::format(
        "webhook:\n  enabled: true\n  listen: 127.0.0.1:0\n  tlsCert: {}\n  tlsKey: {}\n"
        "  image: ghcr.io/modelcache/modelcache:test\n",
        certificates_.Path("server.pem"), certificates_.Path("server.key"));
    auto coordinator = testing::CoordinatorProcess::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  void TearDown() override {
    testing::ExpectObjectsValid(server_.get());
  }

  Output Run(std::vector<std::string> argv) {
    std::string tag = std::to_string(++runs_);
    testing::SubprocessOptions options;
    options.argv = std::move(argv);
    options.stdout_path = dir_.Join("run-" + tag + ".out");
    options.stderr_path = dir_.Join("run-" + tag + ".err");
    Output result;
    auto process = testing::Subprocess::Start(options);
    if (!process.ok()) return result;
    auto exit = (*process)->WaitExit(60s);
    EXPECT_TRUE(exit.ok()) << options.argv[0] << " did not finish: " << exit.status();
    if (exit.ok() && exit->exited) result.exit_code = exit->code;
    result.out = testing::ReadTestFile(options.stdout_path);
    result.err = testing::ReadTestFile(options.stderr_path);
    return result;
  }

  // The webhook's port: in the coordinator's log line "admission webhook listening".
  int WebhookPort() {
    std::string log = testing::ReadTestFile(coordinator_->LogPath());
    size_t line = log.find("admission webhook listening");
    if (line == std::string::npos) return 0;
    size_t at = log.find("port=", line);
    return at == std::string::npos ? 0 : std::atoi(log.c_str() + at + 5);
  }

  // A pod as a Deployment's ReplicaSet makes it from kubectl's template, with `annotations`.
  json TemplatePod(const std::string& name, const std::vector<std::string>& images, const json& annotations) {
    std::vector<std::string> argv = {"kubectl", "create", "deployment", name, "--dry-run=client", "-o", "json",
                                     "--namespace", "team-a"};
    for (const std::string& image : images) argv.push_back("--image=" + image);
    Output made = Run(argv);
    EXPECT_EQ(made.exit_code, 0) << made.err;
    json deployment = json::parse(made.out, nullptr, false);
    json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
    pod["metadata"] = deployment["spec"]["template"]["metadata"];
    pod["metadata"]["name"] = name + "-abcde";
    pod["metadata"]["namespace"] = "team-a";
    pod["metadata"]["labels"]["modelcache.io/inject"] = "true";
    pod["metadata"]["annotations"] = annotations;
    pod["spec"] = deployment["spec"]["template"]["spec"];
    return pod;
  }

  // Posts the AdmissionReview for `pod` to /mutate; returns the answer's `response`.
  json Review(const json& pod) {
    json review = {{"apiVersion", "admission.k8s.io/v1"},
                   {"kind", "AdmissionReview"},
                   {"request",
                    {{"uid", "uid-" + std::to_string(runs_)},
                     {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
                     {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
                     {"namespace", "team-a"},
                     {"operation", "CREATE"},
                     {"object", pod}}}};
    std::string body_path = dir_.Join("review-" + std::to_string(runs_) + ".json");
    EXPECT_TRUE(testing::WriteTestFile(body_path, review.dump()));
    Output posted = Run({"curl", "-sS", "--fail-with-body", "--cacert", certificates_.Path("ca.pem"), "-H",
                         "Content-Type: application/json", "--data-binary", "@" + body_path,
                         fmt::format("https://127.0.0.1:{}/mutate", WebhookPort())});
    EXPECT_EQ(posted.exit_code, 0) << posted.err << posted.out;
    json answer = json::parse(posted.out, nullptr, false);
    EXPECT_EQ(answer.value("kind", ""), "AdmissionReview") << posted.out;
    EXPECT_EQ(answer["response"].value("uid", ""), review["request"]["uid"]);
    return answer["response"];
  }

  // The pod with the answer's patch applied (RFC 6902); the pod itself when there is none.
  json Patched(const json& pod, const json& response) {
    if (!response.contains("patch")) return pod;
    EXPECT_EQ(response.value("patchType", ""), "JSONPatch");
    std::string text;
    EXPECT_TRUE(absl::Base64Unescape(response["patch"].get<std::string>(), &text));
    return pod.patch(json::parse(text));
  }

  // Creates `pod` in the test API server, which validates it (TearDown checks the failures).
  void CreateValidated(const json& pod) {
    auto created = admin_->Create(kube::Pods(), pod);
    EXPECT_TRUE(created.ok()) << created.status();
  }

  static json ModelAnnotations() {
    return {{"modelcache.io/model", "llama"}, {"modelcache.io/version", "v1"},
            {"modelcache.io/source", "https://models.example.com/llama/"}};
  }

  testing::TempDir dir_;
  testing::TestCertificates certificates_;
  std::unique_ptr<testing::KubeApiServer> server_;
  std::unique_ptr<kube::KubeClient> admin_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  int runs_ = 0;
};

std::string EnvValue(const json& container, const std::string& name) {
  for (const json& variable : container.value("env", json::array())) {
    if (variable.value("name", "") == name) return variable.value("value", "");
  }
  return "";
}

// A copy of the container named `name` in spec.<list>; null when there is none.
json Container(const json& pod, const std::string& list, const std::string& name) {
  for (const json& container : pod["spec"].value(list, json::array())) {
    if (container.value("name", "") == name) return container;
  }
  return nullptr;
}

TEST_F(WebhookTest, PlainPodGetsTheFetchInitContainerAndModelPath) {
  json pod = TemplatePod("server", {"nginx:1.25"}, ModelAnnotations());
  json response = Review(pod);
  ASSERT_TRUE(response.value("allowed", false)) << response.dump();
  json patched = Patched(pod, response);
  json fetch = Container(patched, "initContainers", "modelcache-fetch");
  ASSERT_TRUE(fetch.is_object()) << patched.dump();
  EXPECT_EQ(fetch["image"], "ghcr.io/modelcache/modelcache:test");
  EXPECT_EQ(EnvValue(fetch, "MODELCACHE_DISABLE"), "false");
  json app = Container(patched, "containers", "nginx");
  ASSERT_TRUE(app.is_object());
  EXPECT_EQ(EnvValue(app, "MODEL_PATH"), "/models/llama");
  CreateValidated(patched);
}

TEST_F(WebhookTest, OnlyTheNamedContainersGetTheModel) {
  json annotations = ModelAnnotations();
  annotations["modelcache.io/containers"] = "busybox";
  json pod = TemplatePod("pair", {"nginx:1.25", "busybox:1.36"}, annotations);
  json response = Review(pod);
  ASSERT_TRUE(response.value("allowed", false)) << response.dump();
  json patched = Patched(pod, response);
  ASSERT_TRUE(Container(patched, "containers", "busybox").is_object()) << patched.dump();
  EXPECT_EQ(EnvValue(Container(patched, "containers", "busybox"), "MODEL_PATH"), "/models/llama");
  EXPECT_EQ(EnvValue(Container(patched, "containers", "nginx"), "MODEL_PATH"), "");
  CreateValidated(patched);
}

TEST_F(WebhookTest, OptOutEnvMakesTheInitContainerDownloadLocally) {
  json pod = TemplatePod("optout", {"nginx:1.25"}, ModelAnnotations());
  pod["spec"]["containers"][0]["env"] = json::array({{{"name", "AIOLI_DISABLE_MODEL_CACHE"}, {"value", "true"}}});
  json response = Review(pod);
  ASSERT_TRUE(response.value("allowed", false)) << response.dump();
  json patched = Patched(pod, response);
  json fetch = Container(patched, "initContainers", "modelcache-fetch");
  ASSERT_TRUE(fetch.is_object());
  EXPECT_EQ(EnvValue(fetch, "MODELCACHE_DISABLE"), "true");
  EXPECT_EQ(EnvValue(Container(patched, "containers", "nginx"), "MODEL_PATH"), "/models/llama");
  CreateValidated(patched);
}

TEST_F(WebhookTest, BadAnnotationsAreRefusedNamingTheAnnotation) {
  struct Case {
    std::string annotation;
    std::string value;  // empty: the annotation is removed
  };
  for (const Case& bad : {Case{"modelcache.io/source", "gopher://x/y"}, Case{"modelcache.io/model", "Bad Name!"},
                          Case{"modelcache.io/version", ""}, Case{"modelcache.io/containers", "nope"}}) {
    json annotations = ModelAnnotations();
    if (bad.value.empty()) {
      annotations.erase(bad.annotation);
    } else {
      annotations[bad.annotation] = bad.value;
    }
    json response = Review(TemplatePod("bad", {"nginx:1.25"}, annotations));
    EXPECT_FALSE(response.value("allowed", true)) << bad.annotation << ": " << response.dump();
    EXPECT_EQ(response["status"].value("code", 0), 400);
    EXPECT_NE(response["status"].value("message", "").find(bad.annotation), std::string::npos)
        << response.dump();
    EXPECT_FALSE(response.contains("patch"));
  }
}

TEST_F(WebhookTest, AnAlreadyMutatedPodGetsNoPatch) {
  json pod = TemplatePod("twice", {"nginx:1.25"}, ModelAnnotations());
  json once = Patched(pod, Review(pod));
  json again = Review(once);
  EXPECT_TRUE(again.value("allowed", false)) << again.dump();
  EXPECT_FALSE(again.contains("patch")) << again.dump();
  CreateValidated(once);
}

TEST_F(WebhookTest, NotAnAdmissionReviewIsA400AndPlainHttpIsRefused) {
  std::string body_path = dir_.Join("junk.json");
  ASSERT_TRUE(testing::WriteTestFile(body_path, "{\"kind\": \"Pod\"}"));
  Output junk = Run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificates_.Path("ca.pem"),
                     "--data-binary", "@" + body_path, fmt::format("https://127.0.0.1:{}/mutate", WebhookPort())});
  EXPECT_EQ(junk.out, "400");
  Output plain = Run({"curl", "-sS", "--max-time", "10", "--data-binary", "@" + body_path,
                      fmt::format("http://127.0.0.1:{}/mutate", WebhookPort())});
  EXPECT_NE(plain.exit_code, 0) << "plain HTTP answered: " << plain.out;
}

}  // namespace
}  // namespace modelcache
