#include "coordinator/webhook/pod_injection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"

namespace modelcache::webhook {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

InjectionSettings Settings() {
  return {.image = "modelcache/modelcache:0.1.0", .claim_name = "models-cache-pvc-modelcache"};
}

// The pod template `kubectl create deployment server --image=vllm --dry-run=client -o json` makes,
// with the annotations and the label.
json Pod(json annotations = {}) {
  json pod = {{"metadata",
               {{"labels", {{"app", "server"}, {"modelcache.io/inject", "true"}}},
                {"annotations",
                 {{"modelcache.io/model", "llama"}, {"modelcache.io/version", "v2"},
                  {"modelcache.io/source", "s3://models/llama/v2/"}}}}},
              {"spec", {{"containers", json::array({{{"name", "vllm"}, {"image", "vllm"}, {"resources", json::object()}}})}}}};
  for (auto& [key, value] : annotations.items()) pod["metadata"]["annotations"][key] = value;
  return pod;
}

const json* Find(const json& list, const std::string& name) {
  for (const json& item : list) {
    if (item.value("name", "") == name) return &item;
  }
  return nullptr;
}

std::string Env(const json& container, const std::string& name) {
  if (!container.contains("env")) return "<unset>";
  const json* variable = Find(container["env"], name);
  return variable == nullptr ? "<unset>" : variable->value("value", "");
}

TEST(PodInjection, PlainPodGetsTheFetchVolumesAndModelPath) {
  absl::StatusOr<json> pod = InjectedPod(Pod(), Settings());
  ASSERT_TRUE(pod.ok()) << pod.status();
  const json& spec = (*pod)["spec"];
  ASSERT_EQ(spec["initContainers"].size(), 1u);
  const json& init = spec["initContainers"][0];
  EXPECT_EQ(init["name"], "modelcache-fetch");
  EXPECT_EQ(init["image"], "modelcache/modelcache:0.1.0");
  EXPECT_THAT(init["args"].dump(), HasSubstr("\"--fallback\""));
  EXPECT_THAT(init["args"].dump(), HasSubstr("\"--holder\",\"$(MODELCACHE_HOLDER)\""));
  EXPECT_EQ(Env(init, "MODELCACHE_DISABLE"), "false");
  ASSERT_NE(Find(spec["volumes"], "modelcache-socket"), nullptr);
  EXPECT_EQ((*Find(spec["volumes"], "modelcache-cache"))["persistentVolumeClaim"]["claimName"], "models-cache-pvc-modelcache");
  EXPECT_TRUE((*Find(spec["volumes"], "modelcache-cache"))["persistentVolumeClaim"]["readOnly"].get<bool>());
  const json& app = spec["containers"][0];
  EXPECT_EQ(Env(app, "MODEL_PATH"), "/models/llama");
  const json* mount = Find(app["volumeMounts"], "modelcache-model");
  ASSERT_NE(mount, nullptr);
  EXPECT_EQ((*mount)["mountPath"], "/models/llama");
  EXPECT_TRUE((*mount)["readOnly"].get<bool>());
}

TEST(PodInjection, NamedContainersOnlyAndTheMountPathAnnotation) {
  json pod = Pod({{"modelcache.io/containers", "server"}, {"modelcache.io/mount-path", "/srv/model"}});
  pod["spec"]["containers"] = json::array({{{"name", "server"}, {"image", "a"}}, {{"name", "proxy"}, {"image", "b"}}});
  absl::StatusOr<json> injected = InjectedPod(pod, Settings());
  ASSERT_TRUE(injected.ok()) << injected.status();
  EXPECT_EQ(Env((*injected)["spec"]["containers"][0], "MODEL_PATH"), "/srv/model");
  EXPECT_EQ(Env((*injected)["spec"]["containers"][1], "MODEL_PATH"), "<unset>");
  EXPECT_FALSE((*injected)["spec"]["containers"][1].contains("volumeMounts"));
}

TEST(PodInjection, OptOutByEnvOrAnnotationDownloadsLocally) {
  for (const char* variable : {"AIOLI_DISABLE_MODEL_CACHE", "MODELCACHE_DISABLE"}) {
    json pod = Pod();
    pod["spec"]["containers"][0]["env"] = json::array({{{"name", variable}, {"value", "true"}}});
    absl::StatusOr<json> injected = InjectedPod(pod, Settings());
    ASSERT_TRUE(injected.ok()) << injected.status();
    EXPECT_EQ(Env((*injected)["spec"]["initContainers"][0], "MODELCACHE_DISABLE"), "true") << variable;
    EXPECT_EQ(Env((*injected)["spec"]["containers"][0], "MODEL_PATH"), "/models/llama");
  }
  absl::StatusOr<json> annotated = InjectedPod(Pod({{"modelcache.io/disabled", "true"}}), Settings());
  ASSERT_TRUE(annotated.ok());
  EXPECT_EQ(Env((*annotated)["spec"]["initContainers"][0], "MODELCACHE_DISABLE"), "true");
}

TEST(PodInjection, BadAnnotationsAreRefusedNamingTheAnnotation) {
  struct Case {
    json annotations;
    std::string named;
  };
  json no_version = Pod();
  no_version["metadata"]["annotations"].erase("modelcache.io/version");
  EXPECT_THAT(std::string(InjectedPod(no_version, Settings()).status().message()),
              HasSubstr("annotation modelcache.io/version: missing"));
  for (const Case& bad : std::vector<Case>{{{{"modelcache.io/source", "ftp://x/y"}}, "modelcache.io/source"},
                                           {{{"modelcache.io/model", "../etc"}}, "modelcache.io/model"},
                                           {{{"modelcache.io/mount-path", "relative"}}, "modelcache.io/mount-path"},
                                           {{{"modelcache.io/containers", "nope"}}, "modelcache.io/containers"},
                                           {{{"modelcache.io/disabled", "maybe"}}, "modelcache.io/disabled"}}) {
    absl::StatusOr<json> refused = InjectedPod(Pod(bad.annotations), Settings());
    ASSERT_FALSE(refused.ok()) << bad.annotations.dump();
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("annotation " + bad.named)) << bad.annotations.dump();
  }
}

TEST(PodInjection, AnswerIsARfc6902PatchAndASecondAdmissionChangesNothing) {
  json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"request", {{"uid", "req-1"}, {"object", Pod()}}}};
  absl::StatusOr<json> answer = AdmissionAnswer(review, Settings());
  ASSERT_TRUE(answer.ok()) << answer.status();
  const json& response = (*answer)["response"];
  EXPECT_EQ(response["uid"], "req-1");
  EXPECT_TRUE(response["allowed"].get<bool>());
  ASSERT_EQ(response["patchType"], "JSONPatch");
  std::string patch_text;
  ASSERT_TRUE(absl::Base64Unescape(response["patch"].get<std::string>(), &patch_text));
  json patched = Pod().patch(json::parse(patch_text));
  EXPECT_EQ(patched, *InjectedPod(Pod(), Settings()));

  review["request"]["object"] = patched;  // reinvocation, or a pod created from a mutated spec
  absl::StatusOr<json> again = AdmissionAnswer(review, Settings());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)["response"]["allowed"].get<bool>());
  EXPECT_FALSE((*again)["response"].contains("patch"));
}

TEST(PodInjection, BadAnnotationIsADeniedAnswerWithTheMessage) {
  json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"request", {{"uid", "req-2"}, {"object", Pod({{"modelcache.io/source", "gopher://x"}})}}}};
  absl::StatusOr<json> answer = AdmissionAnswer(review, Settings());
  ASSERT_TRUE(answer.ok());
  EXPECT_FALSE((*answer)["response"]["allowed"].get<bool>());
  EXPECT_THAT((*answer)["response"]["status"]["message"].get<std::string>(), HasSubstr("modelcache.io/source"));
  EXPECT_FALSE(AdmissionAnswer({{"kind", "Pod"}}, Settings()).ok());
}

}  // namespace
}  // namespace modelcache::webhook
