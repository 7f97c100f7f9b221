// kube/ against the test API server (tests/testing/kube_api_server.mjs), a real process on
// 127.0.0.1 over TLS that keeps the API's semantics and validates every object stored with the
// npm Kubernetes models. Every test ends by asking the server whether anything it was sent
// failed validation (only the test that sends bad objects expects failures), and the real
// kubectl reads what the client wrote, as an independent client.
#include <fcntl.h>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/status_format.h"
#include "kube/informer.h"
#include "kube/kube_client.h"
#include "kube/kube_errors.h"
#include "tests/testing/kube_api_server.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache::kube {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::KubeApiServer;
using testing::KubeApiServerOptions;
using testing::PollUntil;
using namespace std::chrono_literals;

constexpr auto kDeadline = 15s;

json NamespaceObject(const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
}

json NfsVolume(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolume"},
          {"metadata", {{"name", name}, {"labels", {{"app.kubernetes.io/managed-by", "modelcache"}}}}},
          {"spec",
           {{"capacity", {{"storage", "10Gi"}}},
            {"accessModes", {"ReadWriteMany"}},
            {"nfs", {{"server", "10.0.0.5"}, {"path", "/export/models"}}},
            {"persistentVolumeReclaimPolicy", "Retain"},
            {"storageClassName", ""},
            {"mountOptions", {"nfsvers=4.1"}}}}};
}

json Claim(const std::string& namespace_name, const std::string& name, const std::string& volume,
           const json& labels = json::object()) {
  json claim = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata", {{"name", name}, {"namespace", namespace_name}, {"labels", labels}}},
                {"spec",
                 {{"accessModes", {"ReadWriteMany"}},
                  {"resources", {{"requests", {{"storage", "10Gi"}}}}},
                  {"storageClassName", ""}}}};
  if (!volume.empty()) claim["spec"]["volumeName"] = volume;
  return claim;
}

std::string Meta(const json& object, const char* key) { return object.at("metadata").value(key, ""); }

class KubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }

  void StartServer(KubeApiServerOptions options) {
    auto server = KubeApiServer::Start(std::move(options));
    if (!server.ok() && server.status().code() == absl::StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << "no test API server: " << server.status();
    }
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = NewClient(server_->Config());
  }

  void TearDown() override {
    if (!server_ || !server_->Running() || expect_invalid_) return;
    auto failures = server_->ValidationFailures();
    ASSERT_TRUE(failures.ok()) << failures.status();
    EXPECT_TRUE(failures->empty()) << "objects failed validation: " << json(*failures).dump();
  }

  std::unique_ptr<KubeClient> NewClient(KubeConfig config, KubeClientOptions options = {}) {
    auto client = KubeClient::Create(std::move(config), std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  json MustCreate(const Resource& resource, const json& object) {
    auto created = client_->Create(resource, object);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : json();
  }

  std::unique_ptr<KubeApiServer> server_;
  std::unique_ptr<KubeClient> client_;
  bool expect_invalid_ = false;
};

TEST_F(KubeClientTest, CreateGetListAndTheServersBookkeeping) {
  const json ns = MustCreate(Namespaces(), NamespaceObject("team-a"));
  EXPECT_FALSE(Meta(ns, "uid").empty());
  EXPECT_FALSE(Meta(ns, "creationTimestamp").empty());
  const json pv = MustCreate(PersistentVolumes(), NfsVolume("models-a"));
  EXPECT_GT(std::stol(Meta(pv, "resourceVersion")), std::stol(Meta(ns, "resourceVersion")))
      << "one cluster-wide counter";
  auto got = client_->Get(PersistentVolumes(), "", "models-a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(Meta(*got, "uid"), Meta(pv, "uid"));
  EXPECT_EQ((*got)["spec"]["nfs"]["path"], "/export/models");
  EXPECT_EQ((*got)["status"]["phase"], "Available");

  auto again = client_->Create(PersistentVolumes(), NfsVolume("models-a"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("already exists"));

  auto missing = client_->Get(PersistentVolumeClaims(), "team-a", "nothing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("persistentvolumeclaims \"nothing\" in namespace \"team-a\""));

  auto no_namespace = client_->Create(PersistentVolumeClaims(), Claim("team-x", "data", ""));
  ASSERT_FALSE(no_namespace.ok());
  EXPECT_EQ(no_namespace.status().code(), absl::StatusCode::kNotFound) << no_namespace.status();
  EXPECT_THAT(std::string(no_namespace.status().message()), HasSubstr("namespaces \"team-x\" not found"));

  auto listed = client_->List(PersistentVolumes(), "", {});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0]["kind"], "PersistentVolume") << "list items get their kind back";
  EXPECT_FALSE(listed->resource_version.empty());
}

TEST_F(KubeClientTest, APvcNamingItsVolumeIsBoundByTheBinderAndKubectlSeesIt) {
  MustCreate(Namespaces(), NamespaceObject("team-a"));
  json volume = NfsVolume("models-team-a");
  volume["spec"]["claimRef"] = {{"namespace", "team-a"}, {"name", "models-cache"}};
  MustCreate(PersistentVolumes(), volume);
  const json claim = MustCreate(PersistentVolumeClaims(), Claim("team-a", "models-cache", "models-team-a"));
  if (!testing::KubectlInstalled()) GTEST_SKIP() << "kubectl is not installed";
  auto out = server_->Kubectl({"get", "pv,pvc", "-A", "-o", "json"});
  ASSERT_TRUE(out.ok()) << out.status();
  const json list = json::parse(*out);
  json pv, pvc;
  for (const json& item : list["items"]) (item["kind"] == "PersistentVolume" ? pv : pvc) = item;
  ASSERT_FALSE(pv.is_null());
  ASSERT_FALSE(pvc.is_null());
  EXPECT_EQ(pv["status"]["phase"], "Bound");
  EXPECT_EQ(pv["spec"]["claimRef"]["uid"], Meta(claim, "uid"));
  EXPECT_EQ(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
  EXPECT_EQ(pvc["status"]["phase"], "Bound");
  EXPECT_EQ(pvc["spec"]["volumeName"], "models-team-a");
  EXPECT_EQ(pvc["status"]["capacity"]["storage"], "10Gi");
  auto namespaces = server_->Kubectl({"get", "ns"});
  ASSERT_TRUE(namespaces.ok()) << namespaces.status();
  EXPECT_THAT(*namespaces, HasSubstr("team-a"));
  EXPECT_THAT(*namespaces, HasSubstr("Active"));

  // Deleting the claim releases a Retain volume; the data is never the server's to delete.
  ASSERT_TRUE(client_->Delete(PersistentVolumeClaims(), "team-a", "models-cache").ok());
  auto released = server_->Kubectl({"get", "pv", "models-team-a", "-o", "jsonpath={.status.phase}"});
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(*released, "Released");
}

TEST_F(KubeClientTest, KubectlWritesAndTheClientReads) {
  if (!testing::KubectlInstalled()) GTEST_SKIP() << "kubectl is not installed";
  testing::TempDir dir;
  testing::WriteTestFile(dir.Path() / "objects.yaml",
                         "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-b, labels: {modelcache.io/cache: enabled}}\n"
                         "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: team-b}\nstringData: {key: value}\n");
  auto applied = server_->Kubectl({"apply", "-f", dir.Join("objects.yaml")});
  ASSERT_TRUE(applied.ok()) << applied.status();
  auto labelled = client_->List(Namespaces(), "", {.label_selector = "modelcache.io/cache=enabled"});
  ASSERT_TRUE(labelled.ok()) << labelled.status();
  ASSERT_EQ(labelled->items.size(), 1u);
  EXPECT_EQ(Meta(labelled->items[0], "name"), "team-b");
  auto secret = client_->Get(Secrets(), "team-b", "s");
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ((*secret)["data"]["key"], "dmFsdWU=") << "stringData is stored as data";
  // A second apply with a change goes through kubectl's strategic merge patch.
  testing::WriteTestFile(dir.Path() / "objects.yaml",
                         "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-b, labels: {modelcache.io/cache: disabled}}\n");
  ASSERT_TRUE(server_->Kubectl({"apply", "-f", dir.Join("objects.yaml")}).ok());
  auto changed = client_->Get(Namespaces(), "", "team-b");
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ((*changed)["metadata"]["labels"]["modelcache.io/cache"], "disabled");
  ASSERT_TRUE(server_->Kubectl({"delete", "-f", dir.Join("objects.yaml")}).ok());
  ASSERT_TRUE(PollUntil([&] { return client_->Get(Namespaces(), "", "team-b").status().code() == absl::StatusCode::kNotFound; },
                        kDeadline));
  EXPECT_EQ(client_->Get(Secrets(), "team-b", "s").status().code(), absl::StatusCode::kNotFound)
      << "deleting a namespace deletes what is in it";
}

TEST_F(KubeClientTest, UpdatesConflictOnAStaleResourceVersionAndReadModifyWriteRetries) {
  MustCreate(PersistentVolumes(), NfsVolume("pv"));
  auto first = client_->Get(PersistentVolumes(), "", "pv");
  ASSERT_TRUE(first.ok());
  json mine = *first;
  json theirs = *first;
  theirs["metadata"]["labels"]["owner"] = "them";
  ASSERT_TRUE(client_->Update(PersistentVolumes(), theirs).ok());
  mine["metadata"]["labels"]["owner"] = "me";
  auto stale = client_->Update(PersistentVolumes(), mine);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("re-read and retry"));

  // A writer that races the read-modify-write once: the helper reads again and wins.
  auto other = NewClient(server_->Config());
  int attempts = 0;
  auto written = client_->ReadModifyWrite(PersistentVolumes(), "", "pv", [&](json& object) -> absl::StatusOr<bool> {
    if (++attempts == 1) {
      auto raced = other->MergePatch(PersistentVolumes(), "", "pv", {{"metadata", {{"annotations", {{"raced", "yes"}}}}}});
      EXPECT_TRUE(raced.ok()) << raced.status();
    }
    object["metadata"]["labels"]["owner"] = "me";
    return true;
  });
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ((*written)["metadata"]["labels"]["owner"], "me");
  EXPECT_EQ((*written)["metadata"]["annotations"]["raced"], "yes") << "the racing write is kept";
  auto unchanged = client_->ReadModifyWrite(PersistentVolumes(), "", "pv", [](json&) -> absl::StatusOr<bool> { return false; });
  ASSERT_TRUE(unchanged.ok());
  EXPECT_EQ(Meta(*unchanged, "resourceVersion"), Meta(*written, "resourceVersion")) << "nothing written";
}

TEST_F(KubeClientTest, MergePatchAndServerSideApplyWithConflicts) {
  MustCreate(Namespaces(), NamespaceObject("team-a"));
  auto patched = client_->MergePatch(Namespaces(), "", "team-a", {{"metadata", {{"labels", {{"modelcache.io/cache", "enabled"}}}}}});
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["metadata"]["labels"]["modelcache.io/cache"], "enabled");
  auto stale = client_->MergePatch(Namespaces(), "", "team-a", {{"metadata", {{"resourceVersion", "1"}, {"labels", {{"x", "y"}}}}}});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << "a resourceVersion in a patch is a precondition";

  json pv = NfsVolume("applied");
  auto created = client_->Apply(PersistentVolumes(), pv, /*force=*/false);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)["metadata"]["managedFields"][0]["manager"], "modelcache");
  EXPECT_EQ((*created)["metadata"]["managedFields"][0]["operation"], "Apply");
  auto same = client_->Apply(PersistentVolumes(), pv, false);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(Meta(*same, "resourceVersion"), Meta(*created, "resourceVersion")) << "applying the same is no change";

  KubeClientOptions someone_else;
  someone_else.field_manager = "someone-else";
  auto other = NewClient(server_->Config(), someone_else);
  json bigger = NfsVolume("applied");
  bigger["spec"]["capacity"]["storage"] = "20Gi";
  auto conflict = other->Apply(PersistentVolumes(), bigger, false);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(conflict.status().message()), HasSubstr(".spec.capacity.storage"));
  EXPECT_THAT(std::string(conflict.status().message()), HasSubstr("conflict with \"modelcache\""));
  auto forced = other->Apply(PersistentVolumes(), bigger, true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ((*forced)["spec"]["capacity"]["storage"], "20Gi");

  // A field applied with the value it had is owned together: when one manager stops
  // applying it, it stays; when the last one does, it goes.
  json without_options = bigger;
  without_options["spec"].erase("mountOptions");
  auto kept = client_->Apply(PersistentVolumes(), without_options, false);
  ASSERT_TRUE(kept.ok()) << kept.status() << ": the same size as applied by the other, no conflict";
  EXPECT_TRUE((*kept)["spec"].contains("mountOptions"));
  auto dropped = other->Apply(PersistentVolumes(), without_options, false);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_FALSE((*dropped)["spec"].contains("mountOptions"));
}

TEST_F(KubeClientTest, DeletePreconditionsProtectANewerIncarnation) {
  const json first = MustCreate(PersistentVolumes(), NfsVolume("pv"));
  auto wrong_uid = client_->Delete(PersistentVolumes(), "", "pv", {.uid = "not-this-one"});
  ASSERT_FALSE(wrong_uid.ok());
  EXPECT_EQ(wrong_uid.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(wrong_uid.status().message()), HasSubstr("UID in precondition"));
  ASSERT_TRUE(client_->MergePatch(PersistentVolumes(), "", "pv", {{"metadata", {{"labels", {{"a", "b"}}}}}}).ok());
  auto stale = client_->Delete(PersistentVolumes(), "", "pv", {.resource_version = Meta(first, "resourceVersion")});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << "changed since read";
  auto deleted = client_->Delete(PersistentVolumes(), "", "pv", {.uid = Meta(first, "uid")});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(client_->Delete(PersistentVolumes(), "", "pv").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KubeClientTest, PagesAndSelectors) {
  MustCreate(Namespaces(), NamespaceObject("a"));
  MustCreate(Namespaces(), NamespaceObject("b"));
  for (int i = 0; i < 7; ++i) {
    const std::string ns = i % 2 == 0 ? "a" : "b";
    MustCreate(PersistentVolumeClaims(), Claim(ns, "claim-" + std::to_string(i), "", {{"tier", i < 3 ? "gold" : "bronze"}}));
  }
  auto page = client_->List(PersistentVolumeClaims(), "", {.limit = 3});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->items.size(), 3u);
  EXPECT_FALSE(page->continue_token.empty());
  auto all = client_->ListAll(PersistentVolumeClaims(), "", {.limit = 3});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->items.size(), 7u);
  auto in_a = client_->ListAll(PersistentVolumeClaims(), "a", {.limit = 2});
  ASSERT_TRUE(in_a.ok());
  EXPECT_EQ(in_a->items.size(), 4u);
  auto gold = client_->List(PersistentVolumeClaims(), "", {.label_selector = "tier in (gold)"});
  ASSERT_TRUE(gold.ok()) << gold.status();
  EXPECT_EQ(gold->items.size(), 3u);
  auto not_gold = client_->List(PersistentVolumeClaims(), "b", {.label_selector = "tier!=gold,tier"});
  ASSERT_TRUE(not_gold.ok()) << not_gold.status();
  EXPECT_EQ(not_gold->items.size(), 2u);
  auto by_name = client_->List(PersistentVolumeClaims(), "", {.field_selector = "metadata.name=claim-4"});
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  ASSERT_EQ(by_name->items.size(), 1u);
  EXPECT_EQ(Meta(by_name->items[0], "namespace"), "a");
  auto active = client_->List(Namespaces(), "", {.field_selector = "status.phase=Active,metadata.name!=default"});
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->items.size(), 5u) << "a, b and the system namespaces but default";
  auto unsupported = client_->List(PersistentVolumeClaims(), "", {.field_selector = "spec.volumeName=x"});
  EXPECT_EQ(unsupported.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unsupported.status().message()), HasSubstr("field label not supported"));

  // A continue token from before the server forgot its history is 410.
  ASSERT_TRUE(server_->Compact().ok());
  auto expired = client_->List(PersistentVolumeClaims(), "", {.limit = 3, .continue_token = page->continue_token});
  ASSERT_FALSE(expired.ok());
  EXPECT_TRUE(IsGone(expired.status())) << expired.status();
  EXPECT_TRUE(IsGone(client_->ListAll(PersistentVolumeClaims(), "", {.limit = 3, .continue_token = page->continue_token}).status()))
      << "a caller's own expired token is the caller's to handle";

  // When it expires in the middle of ListAll (the history forgotten right after the first
  // page), ListAll starts over and still returns everything.
  int pages = 0;
  KubeClientOptions compacting;
  compacting.on_request = [&](const RequestRecord& record) {
    if (record.verb == "list" && ++pages == 1) EXPECT_TRUE(server_->Compact().ok());
  };
  auto restarted = NewClient(server_->Config(), compacting)->ListAll(PersistentVolumeClaims(), "", {.limit = 3});
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(restarted->items.size(), 7u);
  EXPECT_EQ(pages, 5) << "page 1, an expired page 2, then pages 1 to 3 again";
}

TEST_F(KubeClientTest, InvalidObjectsAreRefusedNamingTheField) {
  expect_invalid_ = true;
  json no_path = NfsVolume("bad");
  no_path["spec"]["nfs"].erase("path");
  auto missing = client_->Create(PersistentVolumes(), no_path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("spec.nfs.path: Required value"));
  json unknown = NfsVolume("bad");
  unknown["spec"]["nfs"]["readonly"] = true;  // the field is readOnly
  auto misspelt = client_->Create(PersistentVolumes(), unknown);
  ASSERT_FALSE(misspelt.ok());
  EXPECT_THAT(std::string(misspelt.status().message()), HasSubstr("spec.nfs.readonly: unknown field"));
  auto long_name = client_->Create(Namespaces(), NamespaceObject(std::string(64, 'n')));
  ASSERT_FALSE(long_name.ok());
  EXPECT_THAT(std::string(long_name.status().message()), HasSubstr("metadata.name"));
  EXPECT_THAT(std::string(long_name.status().message()), HasSubstr("no more than 63 characters"));
  auto failures = server_->ValidationFailures();
  ASSERT_TRUE(failures.ok());
  EXPECT_EQ(failures->size(), 3u) << "the server keeps a record a test can assert on";
  EXPECT_EQ(client_->Get(PersistentVolumes(), "", "bad").status().code(), absl::StatusCode::kNotFound) << "nothing stored";
}

TEST_F(KubeClientTest, ForbiddenNamesWhatWasRefusedAndEveryRequestIsRecorded) {
  std::mutex mutex;
  std::vector<RequestRecord> records;
  KubeClientOptions options;
  options.on_request = [&](const RequestRecord& record) {
    std::lock_guard lock(mutex);
    records.push_back(record);
  };
  auto client = NewClient(server_->Config(), options);
  ASSERT_TRUE(client->Create(Namespaces(), NamespaceObject("team-a")).ok());
  ASSERT_TRUE(server_->Configure({{"deny", {{{"verb", "create"}, {"resource", "persistentvolumeclaims"}}}}}).ok());
  auto refused = client->Create(PersistentVolumeClaims(), Claim("team-a", "data", ""));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  const std::string message(refused.status().message());
  EXPECT_THAT(message, HasSubstr("may not create persistentvolumeclaims in namespace \"team-a\""));
  EXPECT_THAT(message, HasSubstr("cannot create resource \"persistentvolumeclaims\"")) << "the server's own words";
  ASSERT_TRUE(client->List(PersistentVolumes(), "", {.label_selector = "a=b"}).ok());
  std::lock_guard lock(mutex);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].method, "POST");
  EXPECT_EQ(records[0].path, "/api/v1/namespaces");
  EXPECT_EQ(records[0].verb, "create");
  EXPECT_EQ(records[0].http_status, 201);
  EXPECT_EQ(records[1].path, "/api/v1/namespaces/team-a/persistentvolumeclaims");
  EXPECT_EQ(records[1].namespace_name, "team-a");
  EXPECT_EQ(records[1].resource, "persistentvolumeclaims");
  EXPECT_EQ(records[1].http_status, 403);
  EXPECT_EQ(records[2].verb, "list");
  EXPECT_EQ(records[2].query, "labelSelector=a%3Db");
  // The server saw the same requests.
  auto seen = server_->Requests();
  ASSERT_TRUE(seen.ok());
  std::vector<std::string> verbs;
  for (const json& request : *seen) verbs.push_back(request["verb"].get<std::string>() + " " + request["path"].get<std::string>());
  EXPECT_THAT(verbs, Contains("create /api/v1/namespaces/team-a/persistentvolumeclaims"));
}

// Bound tokens rotate: the client follows the token file; a stale token gets 401.
TEST_F(KubeClientTest, RotatedTokenIsReadAgainAndTheOldOneRefused) {
  testing::TempDir dir;
  const auto token_file = dir.Path() / "token";
  testing::WriteTestFile(token_file, "token-one");
  ASSERT_TRUE(server_->SetTokens({"token-one,agent,uid-1", "test-token,test-admin,uid-admin"}).ok());
  KubeConfig config = server_->Config("");
  config.token_file = token_file;
  std::atomic<int> unauthorized{0};
  KubeClientOptions options;
  options.on_request = [&](const RequestRecord& record) { unauthorized += record.http_status == 401 ? 1 : 0; };
  auto client = NewClient(config, options);
  ASSERT_TRUE(client->List(Namespaces(), "", {}).ok());

  // Rotation as the kubelet does it (a new file renamed over the old): seen before sending.
  ASSERT_TRUE(server_->SetTokens({"token-two,agent,uid-1", "test-token,test-admin,uid-admin"}).ok());
  testing::WriteTestFile(dir.Path() / "token.new", "token-two");
  std::filesystem::rename(dir.Path() / "token.new", token_file);
  ASSERT_TRUE(client->List(Namespaces(), "", {}).ok());
  EXPECT_EQ(unauthorized.load(), 0);

  // A rotation the stat() check cannot see (same inode, size and mtime): the 401 makes the
  // client read the file again and retry once.
  struct stat before {};
  ASSERT_EQ(::stat(token_file.c_str(), &before), 0);
  ASSERT_TRUE(server_->SetTokens({"token-3so,agent,uid-1", "test-token,test-admin,uid-admin"}).ok());
  testing::WriteTestFile(token_file, "token-3so");
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, token_file.c_str(), times, 0), 0);
  auto recovered = client->List(Namespaces(), "", {});
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(unauthorized.load(), 1) << "one 401, then the retry with the new token";

  auto stale = NewClient(server_->Config("token-one"));
  auto refused = stale->List(Namespaces(), "", {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("401"));
}

TEST_F(KubeClientTest, ClientCertificatesAndKubeconfigFilesAndTls) {
  KubeConfig by_certificate = server_->Config("");
  by_certificate.client_certificate_pem = server_->Certificates().Read("client.pem");
  by_certificate.client_key_pem = server_->Certificates().Read("client.key");
  auto client = NewClient(by_certificate);
  EXPECT_TRUE(client->List(Namespaces(), "", {}).ok()) << "authenticated by the client certificate";
  EXPECT_EQ(NewClient(server_->Config(""))->List(Namespaces(), "", {}).status().code(), absl::StatusCode::kUnauthenticated);

  // The same kubeconfig kubectl uses, loaded the way a daemon loads it.
  auto loaded = LoadKubeConfig({server_->WriteKubeconfig(), ""}, KubeEnvironment{});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(NewClient(*loaded)->List(Namespaces(), "", {}).ok());

  KubeConfig untrusted = server_->Config();
  untrusted.certificate_authority_pem.clear();  // the system's CAs do not know the test CA
  auto refused = NewClient(untrusted)->List(Namespaces(), "", {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  untrusted.insecure_skip_tls_verify = true;
  EXPECT_TRUE(NewClient(untrusted)->List(Namespaces(), "", {}).ok());
}

// The other resources the project will use: pods by node (the agent's leases), a webhook
// configuration (the admission webhook), TokenReviews and SubjectAccessReviews (authentication).
TEST_F(KubeClientTest, PodsByNodeWebhookConfigurationsAndReviews) {
  MustCreate(Namespaces(), NamespaceObject("team-a"));
  for (const char* node : {"node-1", "node-2"}) {
    MustCreate(Pods(), {{"apiVersion", "v1"},
                        {"kind", "Pod"},
                        {"metadata", {{"name", std::string("server-") + node}, {"namespace", "team-a"},
                                      {"labels", {{"modelcache.io/inject", "true"}}}}},
                        {"spec", {{"nodeName", node}, {"containers", {{{"name", "app"}, {"image", "busybox"}}}}}}});
  }
  auto on_node = client_->List(Pods(), "", {.label_selector = "modelcache.io/inject=true", .field_selector = "spec.nodeName=node-2"});
  ASSERT_TRUE(on_node.ok()) << on_node.status();
  ASSERT_EQ(on_node->items.size(), 1u);
  EXPECT_EQ(Meta(on_node->items[0], "name"), "server-node-2");
  EXPECT_EQ(on_node->items[0]["status"]["phase"], "Pending") << "no kubelet runs it";
  json status = on_node->items[0];
  status["status"] = {{"phase", "Running"}};
  ASSERT_TRUE(client_->Update(Pods(), status, "status").ok());
  auto running = client_->List(Pods(), "team-a", {.field_selector = "status.phase=Running"});
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->items.size(), 1u);

  const json webhook = {
      {"apiVersion", "admissionregistration.k8s.io/v1"},
      {"kind", "MutatingWebhookConfiguration"},
      {"metadata", {{"name", "modelcache"}}},
      {"webhooks",
       {{{"name", "pods.modelcache.io"},
         {"clientConfig", {{"service", {{"namespace", "modelcache"}, {"name", "modelcache-coordinator"}, {"path", "/mutate"}}}}},
         {"rules", {{{"operations", {"CREATE"}}, {"apiGroups", {""}}, {"apiVersions", {"v1"}}, {"resources", {"pods"}}}}},
         {"objectSelector", {{"matchLabels", {{"modelcache.io/inject", "true"}}}}},
         {"sideEffects", "None"},
         {"admissionReviewVersions", {"v1"}}}}}};
  auto applied = client_->Apply(MutatingWebhookConfigurations(), webhook, true);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ((*applied)["webhooks"][0]["failurePolicy"], "Fail") << "defaulted as a real server does";
  auto ca_bundle = client_->MergePatch(MutatingWebhookConfigurations(), "", "modelcache",
                                       {{"webhooks", {{{"name", "pods.modelcache.io"},
                                                       {"clientConfig", {{"caBundle", "Q0E="}}}}}}});
  EXPECT_EQ(ca_bundle.status().code(), absl::StatusCode::kInvalidArgument)
      << "a merge patch replaces the whole list: the webhook loses its required fields";

  auto review = client_->Create(TokenReviews(), {{"spec", {{"token", KubeApiServer::kToken}}}});
  ASSERT_TRUE(review.ok()) << review.status();
  EXPECT_EQ((*review)["status"]["authenticated"], true);
  EXPECT_EQ((*review)["status"]["user"]["username"], "test-admin");
  EXPECT_EQ((*review)["status"]["audiences"], json::array({KubeApiServer::kKubernetesAudience}));
  // Audiences as a real server checks them: a static token is good for the API server's own only,
  // a bound token for its own audiences only (and is then no key to the API itself).
  auto other_audience = client_->Create(TokenReviews(), {{"spec", {{"token", KubeApiServer::kToken}, {"audiences", {"modelcache"}}}}});
  ASSERT_TRUE(other_audience.ok()) << other_audience.status();
  EXPECT_EQ((*other_audience)["status"]["authenticated"], false);
  EXPECT_THAT((*other_audience)["status"]["error"].get<std::string>(), HasSubstr("modelcache"));
  ASSERT_TRUE(server_->SetTokens({"test-token,test-admin,uid-admin,\"system:masters\"",
                                  "bound-token,system:serviceaccount:a:b,uid-b,\"system:serviceaccounts\",\"modelcache,other\""})
                  .ok());
  auto bound = client_->Create(TokenReviews(), {{"spec", {{"token", "bound-token"}, {"audiences", {"modelcache"}}}}});
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_EQ((*bound)["status"]["authenticated"], true);
  EXPECT_EQ((*bound)["status"]["audiences"], json::array({"modelcache"}));
  EXPECT_EQ((*bound)["status"]["user"]["groups"], json::array({"system:serviceaccounts"}));
  auto bound_client = KubeClient::Create(server_->Config("bound-token"));
  ASSERT_TRUE(bound_client.ok());
  EXPECT_EQ((*bound_client)->Get(Namespaces(), "", "default").status().code(), absl::StatusCode::kUnauthenticated);
  auto unknown = client_->Create(TokenReviews(), {{"spec", {{"token", "nobody"}}}});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ((*unknown)["status"]["authenticated"], false);
  const json access = {{"spec", {{"user", "test-admin"},
                                 {"resourceAttributes", {{"verb", "delete"}, {"resource", "models"}, {"group", "modelcache.io"}}}}}};
  auto denied = client_->Create(SubjectAccessReviews(), access);
  ASSERT_TRUE(denied.ok()) << denied.status();
  EXPECT_EQ((*denied)["status"]["allowed"], false);
  ASSERT_TRUE(server_->Configure({{"allow", {{{"user", "test-admin"}, {"verb", "delete"}, {"resource", "models"}}}}}).ok());
  auto allowed = client_->Create(SubjectAccessReviews(), access);
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ((*allowed)["status"]["allowed"], true);
  EXPECT_EQ(client_->Get(TokenReviews(), "", "x").status().code(), absl::StatusCode::kUnimplemented)
      << "reviews are create-only (405)";
  expect_invalid_ = true;  // the caBundle patch above
}

// Collects the informer's callbacks; thread-safe.
class Recorder : public InformerHandler {
 public:
  void OnAdded(const json& object) override { Add("ADDED " + ObjectKey(object)); }
  void OnModified(const json&, const json& object) override { Add("MODIFIED " + ObjectKey(object)); }
  void OnDeleted(const json& object) override { Add("DELETED " + ObjectKey(object)); }
  void OnSynced() override { Add("SYNCED"); }
  void OnTrouble(const absl::Status& error, std::chrono::milliseconds) override {
    std::lock_guard lock(mutex_);
    troubles_.push_back(error);
  }

  bool Saw(const std::string& event) const {
    std::lock_guard lock(mutex_);
    return std::find(events_.begin(), events_.end(), event) != events_.end();
  }
  int Count(const std::string& event) const {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count(events_.begin(), events_.end(), event));
  }
  std::vector<std::string> Events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  void Clear() {
    std::lock_guard lock(mutex_);
    events_.clear();
  }
  std::vector<std::thread::id> Threads() const {
    std::lock_guard lock(mutex_);
    return threads_;
  }

 private:
  void Add(std::string event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
    threads_.push_back(std::this_thread::get_id());
  }
  mutable std::mutex mutex_;
  std::vector<std::string> events_;
  std::vector<std::thread::id> threads_;
  std::vector<absl::Status> troubles_;
};

std::string Dump(const std::vector<std::string>& events) {
  std::string text;
  for (const std::string& event : events) text += event + "; ";
  return text;
}

std::vector<std::string> Keys(const Informer& informer) {
  std::vector<std::string> keys;
  for (const json& object : informer.List()) keys.push_back(ObjectKey(object));
  return keys;
}

InformerOptions FastOptions() {
  InformerOptions options;
  options.backoff.initial = 100ms;
  options.backoff.max = 1s;
  options.random_seed = 42;
  return options;
}

TEST_F(KubeClientTest, WatchStreamsEventsAndBookmarksAndStopsPromptly) {
  auto listed = client_->List(PersistentVolumes(), "", {});
  ASSERT_TRUE(listed.ok());
  std::mutex mutex;
  std::vector<std::string> seen;
  int bookmarks = 0;
  StopSignal stop;
  absl::Status ended;
  std::thread watcher([&] {
    ended = client_->Watch(PersistentVolumes(), "", {.resource_version = listed->resource_version},
                           [&](WatchEvent event) {
                             std::lock_guard lock(mutex);
                             if (event.type == WatchEventType::kBookmark) {
                               ++bookmarks;
                             } else {
                               const char* names[] = {"ADDED", "MODIFIED", "DELETED"};
                               seen.push_back(std::string(names[static_cast<int>(event.type)]) + " " + Meta(event.object, "name"));
                             }
                             return absl::OkStatus();
                           },
                           &stop);
  });
  MustCreate(PersistentVolumes(), NfsVolume("watched"));
  ASSERT_TRUE(client_->MergePatch(PersistentVolumes(), "", "watched", {{"metadata", {{"labels", {{"x", "1"}}}}}}).ok());
  ASSERT_TRUE(client_->Delete(PersistentVolumes(), "", "watched").ok());
  const bool all = PollUntil([&] {
    std::lock_guard lock(mutex);
    return seen.size() >= 3 && bookmarks > 0;
  }, kDeadline);
  const auto stop_at = std::chrono::steady_clock::now();
  stop.Stop();
  watcher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, 1s) << "a watch waiting for events stops at once";
  EXPECT_EQ(ended.code(), absl::StatusCode::kCancelled) << ended;
  ASSERT_TRUE(all);
  EXPECT_THAT(seen, ::testing::ElementsAre("ADDED watched", "MODIFIED watched", "DELETED watched"));
}

TEST_F(KubeClientTest, AWatchFromAForgottenVersionIsGoneEitherWay) {
  auto listed = client_->List(Namespaces(), "", {});
  ASSERT_TRUE(listed.ok());
  MustCreate(Namespaces(), NamespaceObject("n1"));
  ASSERT_TRUE(server_->Compact().ok());
  auto no_events = [](WatchEvent) { return absl::OkStatus(); };
  StopSignal stop;
  const absl::Status as_event = client_->Watch(Namespaces(), "", {.resource_version = listed->resource_version}, no_events, &stop);
  EXPECT_TRUE(IsGone(as_event)) << as_event;
  // The same through the history window (three events kept), answered as an HTTP 410.
  ASSERT_TRUE(server_->Configure({{"goneAs", "status"}, {"historyWindow", 3}}).ok());
  auto recent = client_->List(Namespaces(), "", {});
  ASSERT_TRUE(recent.ok());
  for (const char* name : {"n2", "n3", "n4"}) MustCreate(Namespaces(), NamespaceObject(name));
  std::vector<std::string> replayed;
  auto collect = [&](WatchEvent event) {
    replayed.push_back(Meta(event.object, "name"));
    return replayed.size() == 3 ? absl::CancelledError("seen enough") : absl::OkStatus();
  };
  EXPECT_EQ(client_->Watch(Namespaces(), "", {.resource_version = recent->resource_version}, collect, &stop).code(),
            absl::StatusCode::kCancelled);
  EXPECT_THAT(replayed, ::testing::ElementsAre("n2", "n3", "n4")) << "within the window: the missed events are replayed";
  MustCreate(Namespaces(), NamespaceObject("n5"));
  const absl::Status as_status = client_->Watch(Namespaces(), "", {.resource_version = recent->resource_version}, no_events, &stop);
  EXPECT_TRUE(IsGone(as_status)) << as_status;
  EXPECT_EQ(HttpStatusOf(as_status), 410);
  EXPECT_THAT(std::string(as_status.message()), HasSubstr("too old resource version"));
}

TEST(KubeApiServerTest, PlainHttpToo) {
  auto server = KubeApiServer::Start({.tls = false});
  if (!server.ok() && server.status().code() == absl::StatusCode::kFailedPrecondition) GTEST_SKIP() << server.status();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->Server().rfind("http://", 0), 0u);
  auto client = KubeClient::Create((*server)->Config());
  ASSERT_TRUE(client.ok());
  auto listed = (*client)->List(Namespaces(), "", {});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->items.size(), 4u) << "default, kube-node-lease, kube-public, kube-system";
}

TEST_F(KubeClientTest, InformerListsWatchesAndKeepsItsCache) {
  MustCreate(Namespaces(), NamespaceObject("team-a"));
  MustCreate(PersistentVolumeClaims(), Claim("team-a", "before", ""));
  Recorder recorder;
  SystemClock clock;
  Informer informer(*client_, PersistentVolumeClaims(), FastOptions(), recorder, clock);
  informer.Start();
  ASSERT_TRUE(PollUntil([&] { return recorder.Saw("SYNCED"); }, kDeadline));
  EXPECT_TRUE(informer.Synced());
  EXPECT_TRUE(recorder.Saw("ADDED team-a/before"));
  MustCreate(PersistentVolumeClaims(), Claim("team-a", "after", ""));
  ASSERT_TRUE(client_->MergePatch(PersistentVolumeClaims(), "team-a", "before", {{"metadata", {{"labels", {{"x", "1"}}}}}}).ok());
  ASSERT_TRUE(client_->Delete(PersistentVolumeClaims(), "team-a", "after").ok());
  ASSERT_TRUE(PollUntil([&] { return recorder.Saw("DELETED team-a/after"); }, kDeadline)) << Dump(recorder.Events());
  EXPECT_TRUE(recorder.Saw("ADDED team-a/after"));
  EXPECT_TRUE(recorder.Saw("MODIFIED team-a/before"));
  EXPECT_THAT(Keys(informer), UnorderedElementsAre("team-a/before"));
  auto cached = informer.Get("team-a/before");
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ((*cached)["metadata"]["labels"]["x"], "1");
  ASSERT_TRUE(PollUntil([&] { return informer.Stats().bookmarks > 0; }, kDeadline)) << "bookmarks keep the version fresh";
  const auto stop_at = std::chrono::steady_clock::now();
  informer.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, 1s);
  EXPECT_EQ(informer.Stats().failures, 0);
}

// The informer learns nothing while refused; what changed meanwhile (an object deleted, one
// changed, one created, and the history forgotten) comes out of the relist.
TEST_F(KubeClientTest, InformerResyncTellsWhatVanishedWhileItWasBlind) {
  ASSERT_TRUE(server_->SetTokens({"watcher-token,watcher,uid-w", "test-token,test-admin,uid-admin"}).ok());
  MustCreate(Namespaces(), NamespaceObject("team-a"));
  for (const char* name : {"keep", "change", "vanish"}) MustCreate(PersistentVolumeClaims(), Claim("team-a", name, ""));
  auto watcher_client = NewClient(server_->Config("watcher-token"));
  Recorder recorder;
  SystemClock clock;
  Informer informer(*watcher_client, PersistentVolumeClaims(), FastOptions(), recorder, clock);
  informer.Start();
  ASSERT_TRUE(PollUntil([&] { return recorder.Saw("SYNCED"); }, kDeadline));
  ASSERT_TRUE(server_->Configure({{"deny", {{{"user", "watcher"}}}}}).ok());
  ASSERT_TRUE(server_->DropWatches().ok());
  ASSERT_TRUE(PollUntil([&] { return informer.Stats().failures >= 1; }, kDeadline));
  ASSERT_TRUE(client_->Delete(PersistentVolumeClaims(), "team-a", "vanish").ok());
  ASSERT_TRUE(client_->MergePatch(PersistentVolumeClaims(), "team-a", "change", {{"metadata", {{"labels", {{"v", "2"}}}}}}).ok());
  MustCreate(PersistentVolumeClaims(), Claim("team-a", "new", ""));
  ASSERT_TRUE(server_->Compact().ok());
  recorder.Clear();
  ASSERT_TRUE(server_->Configure({{"deny", json::array()}}).ok());
  ASSERT_TRUE(PollUntil([&] { return recorder.Saw("SYNCED"); }, kDeadline)) << Dump(recorder.Events());
  EXPECT_TRUE(recorder.Saw("DELETED team-a/vanish")) << Dump(recorder.Events());
  EXPECT_TRUE(recorder.Saw("MODIFIED team-a/change"));
  EXPECT_TRUE(recorder.Saw("ADDED team-a/new"));
  EXPECT_FALSE(recorder.Saw("ADDED team-a/keep")) << "an unchanged object is not reported again";
  EXPECT_THAT(Keys(informer), UnorderedElementsAre("team-a/keep", "team-a/change", "team-a/new"));
  EXPECT_GE(informer.Stats().relists, 1);
}

// A selective watch sees no events for a while; without bookmarks its version would age past
// the server's history. Here bookmarks are rare and the history is forgotten: the next watch
// is 410 Gone, as an ERROR event and then as an HTTP status, and each time the informer relists.
TEST_F(KubeClientTest, InformerRelistsAfterGone) {
  ASSERT_TRUE(server_->Configure({{"bookmarkIntervalMs", 600000}}).ok());
  MustCreate(Namespaces(), NamespaceObject("team-a"));
  MustCreate(PersistentVolumeClaims(), Claim("team-a", "selected", "", {{"app", "model"}}));
  Recorder recorder;
  SystemClock clock;
  InformerOptions options = FastOptions();
  options.label_selector = "app=model";
  options.watch_timeout = 1s;  // the server ends each watch after a second: a clean end, watch again
  Informer informer(*client_, PersistentVolumeClaims(), options, recorder, clock);
  informer.Start();
  ASSERT_TRUE(PollUntil([&] { return recorder.Saw("SYNCED"); }, kDeadline));
  for (const char* gone_as : {"event", "status"}) {
    ASSERT_TRUE(server_->Configure({{"goneAs", gone_as}}).ok());
    const int64_t relists = informer.Stats().relists;
    const int synced = recorder.Count("SYNCED");
    MustCreate(PersistentVolumeClaims(), Claim("team-a", std::string("unselected-") + gone_as, ""));
    ASSERT_TRUE(server_->Compact().ok());
    ASSERT_TRUE(PollUntil([&] { return recorder.Count("SYNCED") > synced; }, kDeadline)) << gone_as;
    EXPECT_GT(informer.Stats().relists, relists) << gone_as;
  }
  EXPECT_THAT(Keys(informer), UnorderedElementsAre("team-a/selected"));
  EXPECT_EQ(recorder.Count("ADDED team-a/selected"), 1) << Dump(recorder.Events());
}

TEST_F(KubeClientTest, InformerSurvivesAServerRestartMidWatch) {
  MustCreate(Namespaces(), NamespaceObject("team-a"));
  MustCreate(PersistentVolumeClaims(), Claim("team-a", "one", ""));
  Recorder recorder;
  SystemClock clock;
  Informer informer(*client_, PersistentVolumeClaims(), FastOptions(), recorder, clock);
  informer.Start();
  ASSERT_TRUE(PollUntil([&] { return recorder.Saw("SYNCED"); }, kDeadline));
  server_->Stop();
  ASSERT_TRUE(PollUntil([&] { return informer.Stats().failures >= 2; }, kDeadline));
  EXPECT_THAT(Keys(informer), UnorderedElementsAre("team-a/one")) << "the cache is kept while the server is away";
  ASSERT_TRUE(server_->Restart().ok());
  ASSERT_TRUE(PollUntil([&] { return recorder.Count("SYNCED") >= 2; }, kDeadline)) << Dump(recorder.Events());
  MustCreate(PersistentVolumeClaims(), Claim("team-a", "two", ""));
  ASSERT_TRUE(client_->Delete(PersistentVolumeClaims(), "team-a", "one").ok());
  ASSERT_TRUE(PollUntil([&] { return recorder.Saw("DELETED team-a/one"); }, kDeadline)) << Dump(recorder.Events());
  EXPECT_TRUE(recorder.Saw("ADDED team-a/two"));
  EXPECT_THAT(Keys(informer), UnorderedElementsAre("team-a/two"));
  EXPECT_EQ(recorder.Count("ADDED team-a/one"), 1) << "the relist found it unchanged";
}

TEST_F(KubeClientTest, ServerDownAtStartIsRetriedWithoutABusyLoop) {
  server_->Stop();
  Recorder recorder;
  SystemClock clock;
  InformerOptions options = FastOptions();
  options.backoff.initial = 200ms;
  options.backoff.max = 800ms;
  Informer informer(*client_, Namespaces(), options, recorder, clock);
  const auto started = std::chrono::steady_clock::now();
  informer.Start();
  ASSERT_TRUE(PollUntil([&] { return std::chrono::steady_clock::now() - started > 2500ms; }, 5s, 100ms));
  const int64_t attempts = informer.Stats().lists;
  EXPECT_GE(attempts, 2) << "it keeps trying";
  EXPECT_LE(attempts, 8) << "and waits between attempts (200 ms doubling to 800 ms)";
  EXPECT_FALSE(informer.Synced());
  ASSERT_TRUE(server_->Restart().ok());
  MustCreate(Namespaces(), NamespaceObject("late"));
  ASSERT_TRUE(PollUntil([&] { return recorder.Saw("ADDED late"); }, kDeadline)) << Dump(recorder.Events());
  EXPECT_TRUE(informer.Synced());
}

// Callbacks go where `deliver` sends them (a daemon passes its loop's Post), never on the
// informer's own thread.
TEST_F(KubeClientTest, InformerDeliversOnTheGivenLoop) {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> tasks;
  bool done = false;
  std::thread loop([&] {
    std::unique_lock lock(mutex);
    while (!done || !tasks.empty()) {
      wake.wait(lock, [&] { return done || !tasks.empty(); });
      while (!tasks.empty()) {
        auto task = std::move(tasks.front());
        tasks.pop_front();
        lock.unlock();
        task();
        lock.lock();
      }
    }
  });
  const std::thread::id loop_id = loop.get_id();
  Recorder recorder;
  SystemClock clock;
  InformerOptions options = FastOptions();
  options.deliver = [&](std::function<void()> task) {
    std::lock_guard lock(mutex);
    tasks.push_back(std::move(task));
    wake.notify_one();
  };
  {
    Informer informer(*client_, Namespaces(), options, recorder, clock);
    informer.Start();
    MustCreate(Namespaces(), NamespaceObject("delivered"));
    EXPECT_TRUE(PollUntil([&] { return recorder.Saw("ADDED delivered"); }, kDeadline));
  }
  {
    std::lock_guard lock(mutex);
    done = true;
    wake.notify_one();
  }
  loop.join();
  for (const std::thread::id id : recorder.Threads()) EXPECT_EQ(id, loop_id);
}

}  // namespace
}  // namespace modelcache::kube
