// The coordinator as a Kubernetes controller for the cache claim (issue #13): the real
// modelcache-coordinator against the test API server (tests/testing/kube_api_server.mjs, which
// validates every object written with the npm Kubernetes models), the outcome read back with
// the real `kubectl get pv,pvc -A -o json` as an independent client. Every test ends by
// asserting that the server stored nothing invalid and that every request the coordinator
// made is allowed by the ClusterRole that deploy/ renders (CacheClaimsRbac checks that no rule
// of it goes unused).
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/status_format.h"
#include "coordinator/claims/claims_controller.h"
#include "coordinator/claims/volume_copy.h"
#include "kube/kube_client.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/http_get.h"
#include "tests/testing/kube_api_server.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/ports.h"
#include "tests/testing/rbac_rules.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::KubeApiServer;
using testing::PollUntil;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;
constexpr char kSourceNamespace[] = "modelcache";
constexpr char kClaim[] = "models-cache-pvc-modelcache";
constexpr char kSourceVolume[] = "pvc-source";
constexpr char kCoordinatorToken[] = "coordinator-token";
constexpr char kCoordinatorUser[] = "system:serviceaccount:modelcache:modelcache-coordinator";

std::string Str(const json& object, std::initializer_list<const char*> path) {
  const json* node = &object;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return "";
    node = &(*node)[key];
  }
  return node->is_string() ? node->get<std::string>() : "";
}

json NfsSource() { return {{"nfs", {{"server", "10.0.0.5"}, {"path", "/export/modelcache-pvc-source"}}}}; }

// The ClusterRole deploy/base grants the coordinator, rendered once per test binary.
const absl::StatusOr<std::vector<testing::RbacRule>>& CoordinatorRules() {
  static const absl::StatusOr<std::vector<testing::RbacRule>> rules = testing::RenderedClusterRules(
      std::string(MODELCACHE_SOURCE_DIR) + "/deploy/base", "modelcache", "modelcache-coordinator");
  return rules;
}

class CacheClaimsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::KubectlInstalled()) GTEST_SKIP() << "kubectl is not installed: these tests read through it";
    testing::KubeApiServerOptions options;
    options.tokens = {"test-token,test-admin,uid-admin,\"system:masters\"",
                      std::string(kCoordinatorToken) + "," + kCoordinatorUser + ",uid-coordinator,\"system:serviceaccounts\""};
    auto server = KubeApiServer::Start(options);
    if (!server.ok() && server.status().code() == absl::StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << "no test API server: " << server.status();
    }
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto admin = kube::KubeClient::Create(server_->Config());
    ASSERT_TRUE(admin.ok()) << admin.status();
    admin_ = std::move(*admin);
    token_file_ = dir_.Join("coordinator-token");
    ASSERT_TRUE(testing::WriteTestFile(token_file_, kCoordinatorToken));
    // The coordinator reads its token from a file, as in a pod (bound tokens rotate).
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
    CreateNamespace(kSourceNamespace, false);
  }

  void TearDown() override {
    if (coordinator_) coordinator_->Stop();
    testing::ExpectObjectsValid(server_.get());
    testing::ExpectRequestsAllowed(CoordinatorRules(), RequestLogPath(), "deploy/base's ClusterRole");
  }

  std::string RequestLogPath() const { return dir_.Join("kube-requests.jsonl"); }

  json Create(const kube::Resource& resource, const json& object) {
    auto created = admin_->Create(resource, object);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : json();
  }

  void CreateNamespace(const std::string& name, bool labelled) {
    json object = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
    if (labelled) object["metadata"]["labels"] = {{"modelcache.io/cache", "enabled"}};
    Create(kube::Namespaces(), object);
  }

  void SetLabel(const std::string& name, bool labelled) {
    json patch = {{"metadata", {{"labels", {{"modelcache.io/cache", labelled ? json("enabled") : json(nullptr)}}}}}};
    auto patched = admin_->MergePatch(kube::Namespaces(), "", name, patch);
    ASSERT_TRUE(patched.ok()) << patched.status();
  }

  // The source: a PV of the given volume source and the agents' claim bound to it.
  void MakeSource(const json& volume_source, const std::string& reclaim = "Retain",
                  const std::string& claim = kClaim, const std::string& volume_name = kSourceVolume) {
    json volume = {{"apiVersion", "v1"},
                   {"kind", "PersistentVolume"},
                   {"metadata", {{"name", volume_name}}},
                   {"spec",
                    {{"capacity", {{"storage", "300Gi"}}},
                     {"accessModes", {"ReadWriteMany"}},
                     {"mountOptions", {"nfsvers=4.1"}},
                     {"persistentVolumeReclaimPolicy", reclaim},
                     {"storageClassName", "nfs-client"}}}};
    for (const auto& [key, value] : volume_source.items()) volume["spec"][key] = value;
    Create(kube::PersistentVolumes(), volume);
    MakeSourceClaim(claim, volume_name);
  }

  void MakeSourceClaim(const std::string& claim, const std::string& volume_name) {
    json object = {{"apiVersion", "v1"},
                   {"kind", "PersistentVolumeClaim"},
                   {"metadata", {{"name", claim}, {"namespace", kSourceNamespace}}},
                   {"spec",
                    {{"accessModes", {"ReadWriteMany"}},
                     {"storageClassName", "nfs-client"},
                     {"resources", {{"requests", {{"storage", "300Gi"}}}}}}}};
    if (!volume_name.empty()) object["spec"]["volumeName"] = volume_name;
    Create(kube::PersistentVolumeClaims(), object);
    if (volume_name.empty()) return;
    ASSERT_TRUE(PollUntil([&] { return ClaimPhase(kSourceNamespace, claim) == "Bound"; }, kDeadline, 20ms));
  }

  std::string ClaimPhase(const std::string& ns, const std::string& name) {
    auto claim = admin_->Get(kube::PersistentVolumeClaims(), ns, name);
    return claim.ok() ? Str(*claim, {"status", "phase"}) : "";
  }

  testing::CoordinatorProcessOptions CoordinatorOptions(const std::string& storage = "",
                                                        const std::string& kubernetes = "") {
    return {.directory = dir_.Path(),
            .storage_yaml = "{storageSize: 10Gi, checkUnusedCachedModelsEvery: 1h, purgeUnusedCachedModelsAfter: 1d" +
                            storage + "}",
            .extra_yaml = fmt::format("kubernetes:\n  enabled: true\n  kubeconfig: {}\n  requestLog: {}\n"
                                      "  namespaceIdleAfter: 1h\n{}",
                                      kubeconfig_, RequestLogPath(), kubernetes)};
  }

  void StartCoordinator(const std::string& storage = "", const std::string& kubernetes = "") {
    auto coordinator = testing::CoordinatorProcess::Start(CoordinatorOptions(storage, kubernetes));
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
  }

  // True once each namespace holds our claim, Bound to our PV copy.
  bool CopiesBound(const std::vector<std::string>& namespaces) {
    for (const std::string& ns : namespaces) {
      auto claim = admin_->Get(kube::PersistentVolumeClaims(), ns, kClaim);
      if (!claim.ok() || !claims::IsOurs(*claim) || Str(*claim, {"status", "phase"}) != "Bound" ||
          Str(*claim, {"spec", "volumeName"}) != claims::CopyVolumeName(kClaim, ns)) {
        return false;
      }
    }
    return true;
  }

  void WaitForCopies(const std::vector<std::string>& namespaces) {
    ASSERT_TRUE(PollUntil([&] { return CopiesBound(namespaces); }, kDeadline, 50ms))
        << "copies not bound in time; coordinator log:\n" << (coordinator_ ? coordinator_->Log() : "");
  }

  // What kubectl sees: every PV and PVC, by "namespace/name" (PVs: "/name").
  std::map<std::string, json> KubectlObjects() {
    auto out = server_->Kubectl({"get", "pv,pvc", "-A", "-o", "json"});
    EXPECT_TRUE(out.ok()) << out.status();
    std::map<std::string, json> objects;
    if (!out.ok()) return objects;
    json parsed = json::parse(*out, nullptr, false);
    EXPECT_TRUE(parsed.is_object() && parsed.contains("items")) << "kubectl get: " << *out;
    if (!parsed.is_object() || !parsed.contains("items")) return objects;
    for (const json& item : parsed["items"]) {
      objects[Str(item, {"metadata", "namespace"}) + "/" + Str(item, {"metadata", "name"})] = item;
    }
    return objects;
  }

  // Ours only (managed-by=modelcache), as kubectl sees them.
  std::map<std::string, json> KubectlCopies() {
    std::map<std::string, json> copies;
    for (auto& [key, object] : KubectlObjects()) {
      if (claims::IsOurs(object)) copies[key] = object;
    }
    return copies;
  }

  static std::vector<std::string> KeysOf(const std::map<std::string, json>& objects) {
    std::vector<std::string> keys;
    for (const auto& [key, object] : objects) keys.push_back(key);
    return keys;
  }

  bool NoCopiesIn(const std::string& ns) {
    auto claim = admin_->Get(kube::PersistentVolumeClaims(), ns, kClaim);
    auto volume = admin_->Get(kube::PersistentVolumes(), "", claims::CopyVolumeName(kClaim, ns));
    return absl::IsNotFound(claim.status()) && absl::IsNotFound(volume.status());
  }

  json NamespacesJson() {
    testing::CtlResult result = testing::RunCtl({.directory = dir_.Path(), .coordinator = coordinator_->Address()},
                                                {"namespaces", "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    json parsed = json::parse(result.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << result.out;
    return parsed;
  }

  // Checks the copies kubectl sees for `ns` against the source volume.
  void ExpectCopyOf(const std::map<std::string, json>& objects, const std::string& ns, const json& volume_source) {
    const std::string volume_name = claims::CopyVolumeName(kClaim, ns);
    auto claim = objects.find(ns + "/" + kClaim);
    auto volume = objects.find("/" + volume_name);
    ASSERT_NE(claim, objects.end()) << ns;
    ASSERT_NE(volume, objects.end()) << ns;
    EXPECT_EQ(Str(claim->second, {"status", "phase"}), "Bound") << ns;
    EXPECT_EQ(Str(claim->second, {"spec", "volumeName"}), volume_name) << ns;
    EXPECT_EQ(Str(volume->second, {"status", "phase"}), "Bound") << ns;
    EXPECT_EQ(Str(volume->second, {"spec", "claimRef", "namespace"}), ns);
    EXPECT_EQ(Str(volume->second, {"spec", "claimRef", "name"}), kClaim);
    EXPECT_EQ(Str(volume->second, {"spec", "claimRef", "uid"}), Str(claim->second, {"metadata", "uid"}));
    EXPECT_EQ(Str(volume->second, {"spec", "persistentVolumeReclaimPolicy"}), "Retain") << ns;
    EXPECT_EQ(Str(volume->second, {"spec", "storageClassName"}), "") << ns;
    EXPECT_EQ(Str(claim->second, {"spec", "storageClassName"}), "") << ns;
    EXPECT_EQ(volume->second["spec"]["capacity"]["storage"], "300Gi");
    EXPECT_EQ(volume->second["spec"]["accessModes"], json({"ReadWriteMany"}));
    EXPECT_EQ(volume->second["spec"]["mountOptions"], json({"nfsvers=4.1"}));
    const json& labels = volume->second["metadata"]["labels"];
    EXPECT_EQ(labels.value("app.kubernetes.io/managed-by", ""), "modelcache");
    EXPECT_EQ(labels.value("modelcache.io/source-namespace", ""), kSourceNamespace);
    EXPECT_EQ(labels.value("modelcache.io/source-claim", ""), kClaim);
    EXPECT_EQ(labels.value("modelcache.io/source-volume", ""), kSourceVolume);
    for (const auto& [key, value] : volume_source.items()) {
      if (key == "csi") continue;  // its own handle: checked by the CSI test
      EXPECT_EQ(volume->second["spec"][key], value) << ns << ": the same mountable path as the source";
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<KubeApiServer> server_;
  std::unique_ptr<kube::KubeClient> admin_;
  std::string token_file_;
  std::string kubeconfig_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
};

TEST_F(CacheClaimsTest, NfsSourceIsCopiedIntoThreeLabelledNamespacesWithTheSameExport) {
  MakeSource(NfsSource());
  for (const char* ns : {"team-a", "team-b", "team-c"}) CreateNamespace(ns, true);
  CreateNamespace("team-unlabelled", false);
  StartCoordinator();
  WaitForCopies({"team-a", "team-b", "team-c"});
  std::map<std::string, json> objects = KubectlObjects();
  for (const char* ns : {"team-a", "team-b", "team-c"}) ExpectCopyOf(objects, ns, NfsSource());
  EXPECT_EQ(KubectlCopies().size(), 6u) << "one claim and one volume per labelled namespace, nothing else";
  EXPECT_FALSE(objects.contains(std::string("team-unlabelled/") + kClaim));
  // The source is untouched.
  EXPECT_EQ(Str(objects["/" + std::string(kSourceVolume)], {"spec", "claimRef", "namespace"}), kSourceNamespace);

  json view = NamespacesJson();
  EXPECT_TRUE(view["enabled"].get<bool>());
  EXPECT_TRUE(view["source_healthy"].get<bool>());
  EXPECT_EQ(view["source_claim"], std::string(kSourceNamespace) + "/" + kClaim);
  EXPECT_EQ(view["source_volume"], kSourceVolume);
  EXPECT_EQ(view["storage"], "nfs");
  ASSERT_EQ(view["namespaces"].size(), 3u) << view.dump();
  for (const json& entry : view["namespaces"]) {
    EXPECT_EQ(entry["phase"], "Bound");
    EXPECT_THAT(entry["reasons"][0].get<std::string>(), HasSubstr("label modelcache.io/cache=enabled"));
  }
  testing::CtlResult table =
      testing::RunCtl({.directory = dir_.Path(), .coordinator = coordinator_->Address()}, {"namespaces"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("source: modelcache/models-cache-pvc-modelcache -> pvc-source (nfs)"));
  EXPECT_THAT(table.out, ::testing::ContainsRegex("team-b +models-cache-pvc-modelcache +models-cache-pvc-modelcache-team-b +Bound"));
}

TEST_F(CacheClaimsTest, HostPathSourceIsCopied) {
  const json host = {{"hostPath", {{"path", dir_.Join("cache-on-host")}, {"type", "DirectoryOrCreate"}}}};
  MakeSource(host);
  CreateNamespace("team-a", true);
  StartCoordinator();
  WaitForCopies({"team-a"});
  ExpectCopyOf(KubectlObjects(), "team-a", host);
}

TEST_F(CacheClaimsTest, CsiNfsSourceIsCopiedWithItsOwnVolumeHandle) {
  const json csi = {{"csi",
                     {{"driver", "nfs.csi.k8s.io"},
                      {"volumeHandle", "nfs.example#share#pvc-source#"},
                      {"volumeAttributes", {{"server", "nfs.example"}, {"share", "/share"}, {"subdir", "pvc-source"}}}}}};
  MakeSource(csi);
  CreateNamespace("team-a", true);
  CreateNamespace("team-b", true);
  StartCoordinator();
  WaitForCopies({"team-a", "team-b"});
  std::map<std::string, json> objects = KubectlObjects();
  ExpectCopyOf(objects, "team-a", csi);
  const json& a = objects["/" + claims::CopyVolumeName(kClaim, "team-a")]["spec"]["csi"];
  const json& b = objects["/" + claims::CopyVolumeName(kClaim, "team-b")]["spec"]["csi"];
  EXPECT_EQ(a["driver"], "nfs.csi.k8s.io");
  EXPECT_EQ(a["volumeAttributes"], csi["csi"]["volumeAttributes"]) << "the node mounts the same share and subdir";
  std::set<std::string> handles = {a["volumeHandle"].get<std::string>(), b["volumeHandle"].get<std::string>(),
                                   csi["csi"]["volumeHandle"].get<std::string>()};
  EXPECT_EQ(handles.size(), 3u) << "CSI volume handles must be unique";
}

TEST_F(CacheClaimsTest, OtherStorageIsRefusedWithAnErrorThenCopiedWithBypass) {
  MakeSource({{"csi", {{"driver", "ebs.csi.aws.com"}, {"volumeHandle", "vol-0abc"}}}});
  CreateNamespace("team-a", true);
  const uint16_t metrics_port = testing::FreeTcpPort();
  auto options = CoordinatorOptions();
  options.coordinator_extra_yaml = fmt::format("metricsAddress: 127.0.0.1:{}", metrics_port);
  auto coordinator = testing::CoordinatorProcess::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = std::move(*coordinator);
  ASSERT_TRUE(coordinator_->WaitForLogLine("cache claim source unusable", kDeadline)) << coordinator_->Log();
  const std::string log = coordinator_->Log();
  EXPECT_THAT(log, HasSubstr(" error coordinator cache claim source unusable"));
  EXPECT_THAT(log, HasSubstr("pvc-source"));
  EXPECT_THAT(log, HasSubstr("csi ebs.csi.aws.com"));
  EXPECT_THAT(log, HasSubstr("key=modelsCacheStorage.bypassStorageCheck"));
  json view = NamespacesJson();
  EXPECT_FALSE(view["source_healthy"].get<bool>());
  ASSERT_FALSE(view["problems"].empty());
  EXPECT_THAT(view["problems"][0].get<std::string>(), HasSubstr("modelsCacheStorage.bypassStorageCheck"));
  EXPECT_THAT(testing::HttpGet(fmt::format("http://127.0.0.1:{}/metrics", metrics_port)).body,
              HasSubstr("modelcache_coordinator_cache_claims_storage_refused 1"));
  EXPECT_TRUE(KubectlCopies().empty()) << "no copies of refused storage";

  coordinator_->Stop();
  options.storage_yaml = "{storageSize: 10Gi, bypassStorageCheck: true}";
  coordinator = testing::CoordinatorProcess::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = std::move(*coordinator);
  WaitForCopies({"team-a"});
  EXPECT_TRUE(coordinator_->WaitForLogLine("cache claim storage check bypassed", kDeadline));
  EXPECT_THAT(coordinator_->Log(), HasSubstr(" warning coordinator cache claim storage check bypassed"));
  const json copy = KubectlObjects()["/" + claims::CopyVolumeName(kClaim, "team-a")];
  EXPECT_EQ(Str(copy, {"spec", "csi", "driver"}), "ebs.csi.aws.com");
  EXPECT_EQ(Str(copy, {"spec", "persistentVolumeReclaimPolicy"}), "Retain");
}

TEST_F(CacheClaimsTest, SourceWithReclaimDeleteIsStillCopiedAsRetain) {
  MakeSource(NfsSource(), "Delete");
  CreateNamespace("team-a", true);
  StartCoordinator();
  WaitForCopies({"team-a"});
  std::map<std::string, json> objects = KubectlObjects();
  EXPECT_EQ(Str(objects["/" + std::string(kSourceVolume)], {"spec", "persistentVolumeReclaimPolicy"}), "Delete");
  ExpectCopyOf(objects, "team-a", NfsSource());
}

TEST_F(CacheClaimsTest, LabelRemovedDeletesTheCopiesAndLeavesTheData) {
  const std::filesystem::path data = dir_.Path() / "cache-on-host";
  std::filesystem::create_directories(data / "models" / "llama" / "v1");
  ASSERT_TRUE(testing::WriteTestFile(data / "models" / "llama" / "v1" / "weights.bin", "weights"));
  MakeSource({{"hostPath", {{"path", data.string()}}}});
  CreateNamespace("team-a", true);
  CreateNamespace("team-b", true);
  StartCoordinator();
  WaitForCopies({"team-a", "team-b"});
  SetLabel("team-a", false);
  ASSERT_TRUE(PollUntil([&] { return NoCopiesIn("team-a"); }, kDeadline, 50ms)) << coordinator_->Log();
  std::map<std::string, json> objects = KubectlObjects();
  EXPECT_FALSE(objects.contains(std::string("team-a/") + kClaim));
  EXPECT_FALSE(objects.contains("/" + claims::CopyVolumeName(kClaim, "team-a")));
  ExpectCopyOf(objects, "team-b", {{"hostPath", {{"path", data.string()}}}});
  EXPECT_TRUE(objects.contains("/" + std::string(kSourceVolume)));
  EXPECT_EQ(testing::ReadTestFile(data / "models" / "llama" / "v1" / "weights.bin"), "weights")
      << "objects only, never data";
}

TEST_F(CacheClaimsTest, DeletedNamespaceLosesItsCopies) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", true);
  CreateNamespace("team-b", true);
  StartCoordinator();
  WaitForCopies({"team-a", "team-b"});
  auto deleted = admin_->Delete(kube::Namespaces(), "", "team-a");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  ASSERT_TRUE(PollUntil([&] { return NoCopiesIn("team-a"); }, kDeadline, 50ms)) << coordinator_->Log();
  std::map<std::string, json> copies = KubectlCopies();
  EXPECT_EQ(copies.size(), 2u);
  EXPECT_TRUE(copies.contains(std::string("team-b/") + kClaim));
  EXPECT_TRUE(KubectlObjects().contains("/" + std::string(kSourceVolume)));
}

TEST_F(CacheClaimsTest, ForeignClaimOfTheSameNameIsLeftAloneAndReported) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", false);
  CreateNamespace("team-b", true);
  json theirs = Create(kube::PersistentVolumeClaims(),
                       {{"apiVersion", "v1"},
                        {"kind", "PersistentVolumeClaim"},
                        {"metadata", {{"name", kClaim}, {"namespace", "team-a"}, {"labels", {{"owner", "team-a"}}}}},
                        {"spec",
                         {{"accessModes", {"ReadWriteOnce"}},
                          {"storageClassName", "their-class"},
                          {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}});
  SetLabel("team-a", true);
  StartCoordinator();
  WaitForCopies({"team-b"});
  ASSERT_TRUE(coordinator_->WaitForLogLine("not managed by modelcache", kDeadline)) << coordinator_->Log();
  json view = NamespacesJson();
  bool reported = false;
  for (const json& entry : view["namespaces"]) {
    if (entry["namespace"] != "team-a") continue;
    ASSERT_FALSE(entry["problems"].empty());
    EXPECT_THAT(entry["problems"][0].get<std::string>(), HasSubstr("not managed by modelcache"));
    reported = true;
  }
  EXPECT_TRUE(reported) << view.dump();
  std::map<std::string, json> objects = KubectlObjects();
  const json& after = objects[std::string("team-a/") + kClaim];
  EXPECT_EQ(Str(after, {"metadata", "uid"}), Str(theirs, {"metadata", "uid"}));
  EXPECT_EQ(Str(after, {"metadata", "resourceVersion"}), Str(theirs, {"metadata", "resourceVersion"})) << "untouched";
  EXPECT_FALSE(objects.contains("/" + claims::CopyVolumeName(kClaim, "team-a"))) << "no PV that could bind it";
}

TEST_F(CacheClaimsTest, CoordinatorKilledMidReconcileRestartsWithoutDuplicates) {
  MakeSource(NfsSource());
  const std::vector<std::string> namespaces = {"team-a", "team-b", "team-c", "team-d"};
  for (const std::string& ns : namespaces) CreateNamespace(ns, true);
  StartCoordinator();
  // Kill it as soon as it has written its first object.
  ASSERT_TRUE(PollUntil(
      [&] {
        auto requests = server_->Requests();
        if (!requests.ok()) return false;
        for (const json& request : *requests) {
          if (request.value("method", "") == "POST" && request.value("user", "") == kCoordinatorUser) {
            return true;
          }
        }
        return false;
      },
      kDeadline, 5ms));
  ASSERT_TRUE(coordinator_->Kill(SIGKILL).ok());
  ASSERT_TRUE(coordinator_->WaitExit(10s).ok());
  // How far it got (usually part way: a claim without its volume, some namespaces not yet).
  RecordProperty("copies_at_kill", static_cast<int>(KubectlCopies().size()));
  ASSERT_TRUE(coordinator_->Restart().ok());
  WaitForCopies(namespaces);
  std::map<std::string, json> copies = KubectlCopies();
  EXPECT_EQ(copies.size(), 2 * namespaces.size()) << "no duplicates";
  for (const std::string& ns : namespaces) ExpectCopyOf(KubectlObjects(), ns, NfsSource());
}

// Two coordinators during a rollout reconcile the same namespaces at once: the names are
// deterministic and every write has a precondition, so they converge without duplicates and
// without errors (a lost race is a conflict, looked at again).
TEST_F(CacheClaimsTest, TwoCoordinatorsRacingDoNotFight) {
  MakeSource(NfsSource());
  const std::vector<std::string> namespaces = {"team-a", "team-b", "team-c"};
  for (const std::string& ns : namespaces) CreateNamespace(ns, true);
  std::filesystem::create_directories(dir_.Path() / "second");
  auto second_options = CoordinatorOptions();
  second_options.directory = dir_.Path() / "second";
  auto second = testing::CoordinatorProcess::Start(second_options);
  ASSERT_TRUE(second.ok()) << second.status();
  StartCoordinator();
  WaitForCopies(namespaces);
  SetLabel("team-b", false);
  ASSERT_TRUE(PollUntil([&] { return NoCopiesIn("team-b"); }, kDeadline, 50ms));
  CreateNamespace("team-d", true);
  WaitForCopies({"team-a", "team-c", "team-d"});
  // A coordinator whose namespace informer has not yet seen team-b's label go may put team-b's
  // copies back once after the other deleted them; both then agree. Converged means exactly
  // the six objects of the three labelled namespaces, none left over.
  std::map<std::string, json> copies;
  EXPECT_TRUE(PollUntil(
      [&] {
        copies = KubectlCopies();
        return copies.size() == 6u && NoCopiesIn("team-b");
      },
      kDeadline, 50ms))
      << "no duplicates, nothing left in team-b; copies: " << ::testing::PrintToString(KeysOf(copies));
  for (const std::string& ns : {"team-a", "team-c", "team-d"}) ExpectCopyOf(KubectlObjects(), ns, NfsSource());
  for (const std::string& log : {coordinator_->Log(), (*second)->Log()}) {
    EXPECT_THAT(log, ::testing::Not(HasSubstr("cache claim request failed"))) << log;
  }
  (*second)->Stop();
}

TEST_F(CacheClaimsTest, CopiesEditedOrDeletedByHandAreRepairedInOnePass) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", true);
  CreateNamespace("team-b", true);
  StartCoordinator();
  WaitForCopies({"team-a", "team-b"});
  // A person sets the copy to Delete (which would delete shared data) and deletes team-b's claim.
  ASSERT_TRUE(server_->Kubectl({"patch", "pv", claims::CopyVolumeName(kClaim, "team-a"), "--type=merge", "-p",
                                R"({"spec":{"persistentVolumeReclaimPolicy":"Delete"}})"})
                  .ok());
  ASSERT_TRUE(server_->Kubectl({"delete", "pvc", "-n", "team-b", kClaim}).ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto volume = admin_->Get(kube::PersistentVolumes(), "", claims::CopyVolumeName(kClaim, "team-a"));
        return volume.ok() && Str(*volume, {"spec", "persistentVolumeReclaimPolicy"}) == "Retain" &&
               CopiesBound({"team-a", "team-b"});
      },
      kDeadline, 50ms))
      << coordinator_->Log();
  std::map<std::string, json> objects = KubectlObjects();
  ExpectCopyOf(objects, "team-a", NfsSource());
  ExpectCopyOf(objects, "team-b", NfsSource());
  EXPECT_EQ(KubectlCopies().size(), 4u);
}

TEST_F(CacheClaimsTest, ApiServerRestartedMidWatchAndGoneResyncs) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", true);
  CreateNamespace("team-b", false);
  StartCoordinator();
  WaitForCopies({"team-a"});
  server_->Stop();
  ASSERT_TRUE(server_->Restart().ok());
  // Forget the history and cut the watches: every informer resumes from a resourceVersion the
  // server no longer has (410 Gone) and must relist.
  ASSERT_TRUE(server_->Compact().ok());
  ASSERT_TRUE(server_->DropWatches().ok());
  SetLabel("team-b", true);
  SetLabel("team-a", false);
  WaitForCopies({"team-b"});
  ASSERT_TRUE(PollUntil([&] { return NoCopiesIn("team-a"); }, kDeadline, 50ms)) << coordinator_->Log();
  EXPECT_EQ(KubectlCopies().size(), 2u);
  ASSERT_TRUE(server_->Compact().ok());
  ASSERT_TRUE(server_->DropWatches().ok());
  CreateNamespace("team-c", true);
  WaitForCopies({"team-c"});
}

TEST_F(CacheClaimsTest, RotatedTokenRefusedWith401IsReadAgainAndRecovers) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", true);
  StartCoordinator();
  WaitForCopies({"team-a"});
  // The API server now only knows the rotated token; the kubelet writes it into the token file
  // a moment later.
  ASSERT_TRUE(server_->SetTokens({"test-token,test-admin,uid-admin,\"system:masters\"",
                                  std::string("rotated-token,") + kCoordinatorUser + ",uid-coordinator,\"g\""})
                  .ok());
  CreateNamespace("team-b", true);  // the open watch still delivers it; the create gets 401
  ASSERT_TRUE(coordinator_->WaitForLogLine("cache claim request failed", kDeadline)) << coordinator_->Log();
  EXPECT_THAT(coordinator_->Log(), HasSubstr("UNAUTHENTICATED"));
  ASSERT_TRUE(testing::WriteTestFile(token_file_, "rotated-token"));
  WaitForCopies({"team-b"});
  ExpectCopyOf(KubectlObjects(), "team-b", NfsSource());
}

TEST_F(CacheClaimsTest, ApiServerDownAtStartStillServesGrpcAndRetries) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", true);
  server_->Stop();
  StartCoordinator();
  testing::CtlResult nodes =
      testing::RunCtl({.directory = dir_.Path(), .coordinator = coordinator_->Address()}, {"nodes"});
  EXPECT_EQ(nodes.exit_code, 0) << nodes.err;
  ASSERT_TRUE(PollUntil(
      [&] {
        json view = NamespacesJson();
        return view.contains("problems") && !view["problems"].empty() &&
               view["problems"].dump().find("failed") != std::string::npos;
      },
      kDeadline, 100ms))
      << NamespacesJson().dump();
  ASSERT_TRUE(server_->Restart().ok());
  WaitForCopies({"team-a"});
  json view = NamespacesJson();
  EXPECT_TRUE(view["source_healthy"].get<bool>()) << view.dump();
  EXPECT_TRUE(view["problems"].empty()) << view.dump();
}

// ---------------------------------------------------------------- bad input

TEST_F(CacheClaimsTest, MissingSourceClaimIsAnErrorAndMakesNothing) {
  CreateNamespace("team-a", true);
  StartCoordinator();
  ASSERT_TRUE(coordinator_->WaitForLogLine("cache claim source unusable", kDeadline)) << coordinator_->Log();
  EXPECT_THAT(coordinator_->Log(), HasSubstr("reason=source_missing"));
  json view = NamespacesJson();
  ASSERT_FALSE(view["problems"].empty());
  EXPECT_THAT(view["problems"][0].get<std::string>(),
              HasSubstr("persistentvolumeclaim \"models-cache-pvc-modelcache\" in namespace \"modelcache\" not found"));
  EXPECT_TRUE(KubectlCopies().empty());
  // It appears: the copies follow.
  MakeSource(NfsSource());
  WaitForCopies({"team-a"});
}

TEST_F(CacheClaimsTest, UnboundSourceClaimIsAnErrorAndMakesNothing) {
  MakeSourceClaim(kClaim, "");  // no volume: Pending
  CreateNamespace("team-a", true);
  StartCoordinator();
  ASSERT_TRUE(coordinator_->WaitForLogLine("reason=source_unbound", kDeadline)) << coordinator_->Log();
  json view = NamespacesJson();
  EXPECT_THAT(view["problems"][0].get<std::string>(), HasSubstr("is not bound"));
  EXPECT_TRUE(KubectlCopies().empty());
}

TEST_F(CacheClaimsTest, SourceVolumeWithoutVolumeSourceIsRefusedEvenWithBypass) {
  MakeSource(json::object());
  CreateNamespace("team-a", true);
  StartCoordinator(", bypassStorageCheck: true");
  ASSERT_TRUE(coordinator_->WaitForLogLine("reason=no_volume_source", kDeadline)) << coordinator_->Log();
  json view = NamespacesJson();
  EXPECT_THAT(view["problems"][0].get<std::string>(), HasSubstr("has no volume source"));
  EXPECT_TRUE(KubectlCopies().empty());
}

TEST_F(CacheClaimsTest, RbacRefusalNamesTheVerbResourceAndNamespaceAndRecovers) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", true);
  ASSERT_TRUE(server_->Configure({{"deny", {{{"user", kCoordinatorUser}, {"verb", "create"},
                                             {"resource", "persistentvolumeclaims"}}}}})
                  .ok());
  StartCoordinator();
  ASSERT_TRUE(coordinator_->WaitForLogLine("cache claim request failed", kDeadline)) << coordinator_->Log();
  const std::string log = coordinator_->Log();
  EXPECT_THAT(log, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(log, HasSubstr("create"));
  EXPECT_THAT(log, HasSubstr("persistentvolumeclaims"));
  EXPECT_THAT(log, HasSubstr("team-a"));
  json view = NamespacesJson();
  ASSERT_EQ(view["namespaces"].size(), 1u) << view.dump();
  EXPECT_THAT(view["namespaces"][0]["problems"].dump(), HasSubstr("persistentvolumeclaims"));
  EXPECT_TRUE(KubectlCopies().empty()) << "no PV without its claim";
  ASSERT_TRUE(server_->Configure({{"deny", json::array()}}).ok());
  WaitForCopies({"team-a"});
}

TEST_F(CacheClaimsTest, SwitchingStorageAddsNewCopiesAndKeepsThePreviousOnes) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", true);
  StartCoordinator();
  WaitForCopies({"team-a"});
  coordinator_->Stop();
  const std::string next_claim = std::string(kClaim) + "-v2";
  MakeSource({{"nfs", {{"server", "10.0.0.6"}, {"path", "/export/v2"}}}}, "Retain", next_claim, "pvc-source-v2");
  auto coordinator = testing::CoordinatorProcess::Start(CoordinatorOptions(", pvcNameSuffix: \"-v2\""));
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = std::move(*coordinator);
  ASSERT_TRUE(PollUntil([&] { return ClaimPhase("team-a", next_claim) == "Bound"; }, kDeadline, 50ms))
      << coordinator_->Log();
  std::map<std::string, json> objects = KubectlObjects();
  EXPECT_EQ(Str(objects["team-a/" + next_claim], {"spec", "volumeName"}), claims::CopyVolumeName(next_claim, "team-a"));
  EXPECT_EQ(Str(objects["/" + claims::CopyVolumeName(next_claim, "team-a")], {"spec", "nfs", "path"}), "/export/v2");
  EXPECT_EQ(Str(objects[std::string("team-a/") + kClaim], {"status", "phase"}), "Bound") << "the old copy stays";
  json view = NamespacesJson();
  ASSERT_EQ(view["namespaces"].size(), 2u) << view.dump();
  EXPECT_FALSE(view["namespaces"][1]["current"].get<bool>());
  EXPECT_THAT(view["namespaces"][1]["reasons"][0].get<std::string>(), HasSubstr("previous cache claim"));
}

// Off by default: no Kubernetes API call, and the view says why there is nothing.
TEST(CacheClaims, DisabledByDefaultAndTheViewSaysSo) {
  testing::TempDir dir;
  auto coordinator = testing::CoordinatorProcess::Start({.directory = dir.Path()});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  testing::CtlResult table =
      testing::RunCtl({.directory = dir.Path(), .coordinator = (*coordinator)->Address()}, {"namespaces"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("kubernetes.enabled is false"));
  testing::CtlResult json_view =
      testing::RunCtl({.directory = dir.Path(), .coordinator = (*coordinator)->Address()}, {"namespaces", "--json"});
  EXPECT_EQ(json::parse(json_view.out).value("enabled", true), false) << json_view.out;
  EXPECT_THAT((*coordinator)->Log(), ::testing::Not(HasSubstr("cache claims reconciler starting")));
}

// ---------------------------------------------------------------- RBAC

// Every rule of the ClusterRole deploy/ grants the coordinator is used, by a run that goes
// through every path (lists and watches, creates, a repair, deletes); the fixture's TearDown
// checks, for this test as for every other, that each request was allowed.
TEST_F(CacheClaimsTest, EveryRuleDeployGrantsTheCoordinatorIsUsed) {
  const auto& rules = CoordinatorRules();
  ASSERT_TRUE(rules.ok()) << rules.status();
  MakeSource(NfsSource());
  CreateNamespace("team-a", true);
  CreateNamespace("team-b", true);
  StartCoordinator();
  WaitForCopies({"team-a", "team-b"});
  ASSERT_TRUE(server_->Kubectl({"label", "pvc", "-n", "team-a", kClaim, "modelcache.io/source-volume-"}).ok());
  ASSERT_TRUE(server_->Kubectl({"patch", "pv", claims::CopyVolumeName(kClaim, "team-a"), "--type=merge", "-p",
                                R"({"spec":{"persistentVolumeReclaimPolicy":"Delete"}})"})
                  .ok());
  SetLabel("team-b", false);
  ASSERT_TRUE(PollUntil(
      [&] {
        auto volume = admin_->Get(kube::PersistentVolumes(), "", claims::CopyVolumeName(kClaim, "team-a"));
        auto claim = admin_->Get(kube::PersistentVolumeClaims(), "team-a", kClaim);
        return NoCopiesIn("team-b") && volume.ok() && claim.ok() &&
               Str(*volume, {"spec", "persistentVolumeReclaimPolicy"}) == "Retain" &&
               !Str(*claim, {"metadata", "labels", "modelcache.io/source-volume"}).empty();
      },
      kDeadline, 50ms))
      << coordinator_->Log();
  coordinator_->Stop();
  auto requests = testing::ReadRequestLog(RequestLogPath());
  ASSERT_TRUE(requests.ok()) << requests.status();
  std::set<std::string> used;
  for (const json& request : *requests) used.insert(testing::GrantFor(request));
  for (const std::string& grant : testing::GrantsOf(*rules)) {
    // The reviews' rules are kube_auth_test's ReviewRulesDeployGrantsAreExactlyTheOnesUsed.
    if (grant.find("reviews/") != std::string::npos) continue;
    EXPECT_TRUE(used.contains(grant)) << "deploy/ grants " << grant << " but the coordinator never used it";
  }
  EXPECT_FALSE(used.empty());
}

// ---------------------------------------------------------------- pods that ask (in process)

// The entry point the admission webhook calls: a namespace a pod asked in gets a copy, kept for
// namespaceIdleAfter after the last ask; a name that cannot be a namespace is refused by name.
TEST_F(CacheClaimsTest, NamespaceAskedGetsACopyUntilItsIdleTimeRunsOut) {
  MakeSource(NfsSource());
  CreateNamespace("team-a", false);
  testing::FakeClock clock;
  prometheus::Registry registry;
  claims::KubernetesConfig config;
  config.enabled = true;
  config.kubeconfig = kubeconfig_;
  config.request_log = RequestLogPath();
  config.namespace_idle_after = 2h;
  auto controller = claims::ClaimsController::Create(config, StorageConfig{}, clock, registry);
  ASSERT_TRUE(controller.ok()) << controller.status();
  (*controller)->Start();

  absl::Status too_long = (*controller)->NamespaceAsked(std::string(64, 'n'), clock.Now());
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.message()), HasSubstr(std::string(64, 'n')));
  EXPECT_THAT(std::string(too_long.message()), HasSubstr("64 characters"));

  ASSERT_TRUE((*controller)->NamespaceAsked("team-a", clock.Now()).ok());
  WaitForCopies({"team-a"});
  ExpectCopyOf(KubectlObjects(), "team-a", NfsSource());
  clock.Advance(90min);
  ASSERT_TRUE((*controller)->NamespaceAsked("team-a", clock.Now()).ok());  // asked again: 2h from now
  clock.Advance(90min);
  (*controller)->Trigger();
  ASSERT_TRUE(PollUntil([&] { return (*controller)->View().passes > 0; }, kDeadline));
  const int64_t passes = (*controller)->View().passes;
  ASSERT_TRUE(PollUntil([&] { return (*controller)->View().passes > passes; }, kDeadline));
  EXPECT_TRUE(CopiesBound({"team-a"})) << "within 2h of the last ask";
  clock.Advance(31min);
  (*controller)->Trigger();
  ASSERT_TRUE(PollUntil([&] { return NoCopiesIn("team-a"); }, kDeadline, 50ms));
  (*controller)->Stop();
}

}  // namespace
}  // namespace modelcache
