// coordinator/claims/claims_plan: which namespaces get a copy of the cache claim and what to
// create, repair and delete, from the API server's objects and a fake time.
#include "coordinator/claims/claims_plan.h"

#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/claims/claims_config.h"
#include "coordinator/claims/volume_copy.h"

namespace modelcache::claims {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const Clock::TimePoint kNow = FromUnixMillis(1'700'000'000'000);
constexpr char kClaim[] = "models-cache-pvc-modelcache";

json Namespace(const std::string& name, bool labelled = false) {
  json object = {{"metadata", {{"name", name}, {"uid", "ns-" + name}}}, {"status", {{"phase", "Active"}}}};
  if (labelled) object["metadata"]["labels"] = {{"modelcache.io/cache", "enabled"}};
  return object;
}

json SourceVolume() {
  return {{"metadata", {{"name", "pvc-1"}, {"uid", "pv-uid"}, {"resourceVersion", "3"}}},
          {"spec",
           {{"nfs", {{"server", "10.0.0.5"}, {"path", "/export/x"}}},
            {"capacity", {{"storage", "300Gi"}}},
            {"accessModes", {"ReadWriteMany"}},
            {"persistentVolumeReclaimPolicy", "Delete"},
            {"storageClassName", "nfs-client"}}},
          {"status", {{"phase", "Bound"}}}};
}

json SourceClaim(const std::string& phase = "Bound", const std::string& volume = "pvc-1") {
  json claim = {{"metadata", {{"name", kClaim}, {"namespace", "modelcache"}, {"uid", "src-uid"}}},
                {"spec", {{"storageClassName", "nfs-client"}}},
                {"status", {{"phase", phase}}}};
  if (!volume.empty()) claim["spec"]["volumeName"] = volume;
  return claim;
}

ClaimsSettings Settings() {
  return {.source_namespace = "modelcache", .claim_name = kClaim, .bypass_storage_check = false,
          .namespace_idle_after = 1h};
}

ClusterState Healthy() {
  ClusterState cluster;
  cluster.namespaces = {Namespace("modelcache", true), Namespace("default")};
  cluster.volumes = {SourceVolume()};
  cluster.claims = {SourceClaim()};
  return cluster;
}

// The copies as the API server would hold them once created and bound.
void AddCopy(ClusterState& cluster, const std::string& ns, const std::string& claim_uid = "") {
  CopySource source{"modelcache", kClaim, SourceVolume()};
  json claim = DesiredClaim(source, ns);
  claim["metadata"]["uid"] = claim_uid.empty() ? "claim-" + ns : claim_uid;
  claim["metadata"]["resourceVersion"] = "10";
  claim["status"]["phase"] = "Bound";
  json volume = DesiredVolume(source, ns, claim["metadata"]["uid"].get<std::string>());
  volume["metadata"]["uid"] = "volume-" + ns;
  volume["metadata"]["resourceVersion"] = "11";
  volume["status"]["phase"] = "Bound";
  cluster.claims.push_back(claim);
  cluster.volumes.push_back(volume);
}

std::vector<std::string> Describe(const ClaimsPlan& plan) {
  std::vector<std::string> out;
  for (const ClaimsAction& action : plan.actions) {
    out.push_back(std::string(ActionName(action.kind)) + " " + action.namespace_name + "/" + action.name);
  }
  return out;
}

TEST(ClaimsPlan, LabelledNamespacesGetAClaimThenAVolumeAndNoOtherDoes) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a", true));
  cluster.namespaces.push_back(Namespace("team-b", true));
  cluster.namespaces.push_back(Namespace("team-c"));
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  EXPECT_TRUE(plan.source.healthy) << plan.source.problem;
  EXPECT_EQ(plan.source.storage, "nfs");
  EXPECT_THAT(Describe(plan),
              ElementsAre("create persistentvolumeclaim team-a/models-cache-pvc-modelcache",
                          "create persistentvolume team-a/models-cache-pvc-modelcache-team-a",
                          "create persistentvolumeclaim team-b/models-cache-pvc-modelcache",
                          "create persistentvolume team-b/models-cache-pvc-modelcache-team-b"));
  ASSERT_EQ(plan.namespaces.size(), 2u);
  EXPECT_EQ(plan.namespaces[0].namespace_name, "team-a");
  EXPECT_THAT(plan.namespaces[0].reasons, ElementsAre("label modelcache.io/cache=enabled"));
  EXPECT_EQ(plan.namespaces[0].phase, "");
}

TEST(ClaimsPlan, CompleteCopiesNeedNothing) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a", true));
  AddCopy(cluster, "team-a");
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  EXPECT_THAT(Describe(plan), ::testing::IsEmpty());
  ASSERT_EQ(plan.namespaces.size(), 1u);
  EXPECT_EQ(plan.namespaces[0].phase, "Bound");
  EXPECT_EQ(plan.namespaces[0].volume, "models-cache-pvc-modelcache-team-a");
}

TEST(ClaimsPlan, AVolumeDeletedByHandIsMadeAgainForTheExistingClaim) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a", true));
  AddCopy(cluster, "team-a", "the-claim");
  cluster.volumes.pop_back();
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  ASSERT_THAT(Describe(plan), ElementsAre("create persistentvolume team-a/models-cache-pvc-modelcache-team-a"));
  EXPECT_EQ(plan.actions[0].object["spec"]["claimRef"]["uid"], "the-claim");
}

TEST(ClaimsPlan, AClaimMadeAgainGetsItsVolumesClaimRefRepaired) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a", true));
  AddCopy(cluster, "team-a", "new-claim");
  cluster.volumes.back()["spec"]["claimRef"]["uid"] = "old-claim";
  cluster.volumes.back()["status"]["phase"] = "Released";
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  ASSERT_THAT(Describe(plan), ElementsAre("repair persistentvolume team-a/models-cache-pvc-modelcache-team-a"));
  EXPECT_EQ(plan.actions[0].object["spec"]["claimRef"]["uid"], "new-claim");
  EXPECT_EQ(plan.actions[0].object["metadata"]["resourceVersion"], "11");
}

TEST(ClaimsPlan, LabelRemovedDeletesClaimThenVolumeWithPreconditions) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a"));
  AddCopy(cluster, "team-a");
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  ASSERT_THAT(Describe(plan), ElementsAre("delete persistentvolumeclaim team-a/models-cache-pvc-modelcache",
                                          "delete persistentvolume team-a/models-cache-pvc-modelcache-team-a"));
  EXPECT_EQ(plan.actions[0].preconditions.uid, "claim-team-a");
  EXPECT_EQ(plan.actions[0].preconditions.resource_version, "10");
  EXPECT_EQ(plan.actions[1].preconditions.uid, "volume-team-a");
  EXPECT_EQ(plan.actions[1].preconditions.resource_version, "11");
}

TEST(ClaimsPlan, DeletedAndTerminatingNamespacesLoseTheirCopies) {
  ClusterState cluster = Healthy();
  json terminating = Namespace("team-t", true);
  terminating["status"]["phase"] = "Terminating";
  terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  cluster.namespaces.push_back(terminating);
  AddCopy(cluster, "team-t");
  AddCopy(cluster, "gone");
  cluster.claims.pop_back();  // the namespace controller deleted the claim with the namespace
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  EXPECT_THAT(Describe(plan), ElementsAre("delete persistentvolume gone/models-cache-pvc-modelcache-gone",
                                          "delete persistentvolumeclaim team-t/models-cache-pvc-modelcache",
                                          "delete persistentvolume team-t/models-cache-pvc-modelcache-team-t"));
}

TEST(ClaimsPlan, AForeignClaimOfTheSameNameIsLeftAloneAndReported) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a", true));
  cluster.claims.push_back({{"metadata", {{"name", kClaim}, {"namespace", "team-a"}, {"uid", "theirs"}}},
                            {"spec", {{"volumeName", "their-pv"}}},
                            {"status", {{"phase", "Bound"}}}});
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  EXPECT_THAT(Describe(plan), ::testing::IsEmpty());
  ASSERT_EQ(plan.namespaces.size(), 1u);
  ASSERT_EQ(plan.namespaces[0].problems.size(), 1u);
  EXPECT_THAT(plan.namespaces[0].problems[0], HasSubstr("not managed by modelcache"));
  EXPECT_EQ(plan.namespaces[0].volume, "their-pv");
  EXPECT_EQ(plan.problems["foreign_claim"], 1);
}

TEST(ClaimsPlan, ABrokenSourceMakesNothingButStillRemoves) {
  for (const auto& [mutate, reason] : std::vector<std::pair<std::function<void(ClusterState&)>, std::string>>{
           {[](ClusterState& c) { c.claims.erase(c.claims.begin()); }, "source_missing"},
           {[](ClusterState& c) { c.claims[0] = SourceClaim("Pending", ""); }, "source_unbound"},
           {[](ClusterState& c) { c.volumes.erase(c.volumes.begin()); }, "source_volume_missing"},
           {[](ClusterState& c) { c.volumes[0]["spec"].erase("nfs"); }, "no_volume_source"},
           {[](ClusterState& c) {
              c.volumes[0]["spec"].erase("nfs");
              c.volumes[0]["spec"]["awsElasticBlockStore"] = {{"volumeID", "vol-1"}};
            },
            "storage_refused"}}) {
    ClusterState cluster = Healthy();
    cluster.namespaces.push_back(Namespace("team-a", true));
    cluster.namespaces.push_back(Namespace("team-b"));
    AddCopy(cluster, "team-b");
    mutate(cluster);
    ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
    EXPECT_FALSE(plan.source.healthy) << reason;
    EXPECT_EQ(plan.source.reason, reason);
    EXPECT_FALSE(plan.source.problem.empty());
    EXPECT_EQ(plan.problems[reason], 1);
    EXPECT_THAT(Describe(plan), ElementsAre("delete persistentvolumeclaim team-b/models-cache-pvc-modelcache",
                                            "delete persistentvolume team-b/models-cache-pvc-modelcache-team-b"))
        << reason;
    ASSERT_EQ(plan.namespaces.size(), 1u);
    EXPECT_THAT(plan.namespaces[0].problems[0], HasSubstr("no copy made or repaired"));
  }
}

TEST(ClaimsPlan, RefusedStorageIsCopiedWithBypassAndListedAsAProblem) {
  ClusterState cluster = Healthy();
  cluster.volumes[0]["spec"].erase("nfs");
  cluster.volumes[0]["spec"]["csi"] = {{"driver", "ebs.csi.aws.com"}, {"volumeHandle", "vol-1"}};
  cluster.namespaces.push_back(Namespace("team-a", true));
  ClaimsSettings settings = Settings();
  settings.bypass_storage_check = true;
  ClaimsPlan plan = PlanClaims(cluster, settings, kNow);
  EXPECT_TRUE(plan.source.healthy);
  EXPECT_TRUE(plan.source.bypassed);
  EXPECT_EQ(plan.actions.size(), 2u);
  EXPECT_THAT(plan.namespaces[0].problems[0], HasSubstr("bypassStorageCheck"));
}

TEST(ClaimsPlan, AnAskedNamespaceQualifiesUntilItsIdleTimeRunsOut) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a"));
  cluster.asks["team-a"] = kNow - 20min;
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  EXPECT_EQ(plan.actions.size(), 2u);
  ASSERT_EQ(plan.namespaces.size(), 1u);
  EXPECT_THAT(plan.namespaces[0].reasons[0], HasSubstr("a pod asked for a cached model 20m ago"));
  ASSERT_TRUE(plan.next_expiry.has_value());
  EXPECT_EQ(*plan.next_expiry, kNow + 40min);

  AddCopy(cluster, "team-a");
  EXPECT_TRUE(PlanClaims(cluster, Settings(), kNow + 39min).actions.empty());
  ClaimsPlan idle = PlanClaims(cluster, Settings(), kNow + 40min);
  EXPECT_THAT(Describe(idle), ElementsAre("delete persistentvolumeclaim team-a/models-cache-pvc-modelcache",
                                          "delete persistentvolume team-a/models-cache-pvc-modelcache-team-a"));
  EXPECT_FALSE(idle.next_expiry.has_value());
}

// Every coordinator must read why a copy exists the same way (a second one of a rollout, or one
// restarted after the label went): the claim says whether it was made for the label or a pod.
TEST(ClaimsPlan, ACreatedClaimSaysWhetherItWasMadeForTheLabelOrForAPod) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a", true));
  cluster.namespaces.push_back(Namespace("team-b"));
  cluster.asks["team-a"] = kNow - 1min;  // labelled and asked: the label is the lasting reason
  cluster.asks["team-b"] = kNow - 1min;
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  std::map<std::string, std::string> made_for;
  for (const ClaimsAction& action : plan.actions) {
    if (action.kind != ActionKind::kCreateClaim) continue;
    made_for[action.namespace_name] = action.object["metadata"]["annotations"].value(kMadeForAnnotation, "");
  }
  EXPECT_EQ(made_for, (std::map<std::string, std::string>{{"team-a", "label"}, {"team-b", "pod"}}));
}

TEST(ClaimsPlan, TheSourceNamespaceNeverGetsACopy) {
  ClusterState cluster = Healthy();
  cluster.asks["modelcache"] = kNow;
  EXPECT_TRUE(PlanClaims(cluster, Settings(), kNow).actions.empty());
  // Even labelled as ours, the source claim and volume are never deleted.
  cluster.claims[0]["metadata"]["labels"] = {{"app.kubernetes.io/managed-by", "modelcache"},
                                             {"modelcache.io/source-claim", kClaim}};
  cluster.volumes[0]["metadata"]["labels"] = {{"app.kubernetes.io/managed-by", "modelcache"},
                                              {"modelcache.io/namespace", "modelcache"}};
  EXPECT_TRUE(PlanClaims(cluster, Settings(), kNow).actions.empty());
}

TEST(ClaimsPlan, PreviousClaimCopiesStayWhileClaimedAndTheirOrphanVolumesGo) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a", true));
  AddCopy(cluster, "team-a");  // copies of models-cache-pvc-modelcache
  // The storage switched: the source is now models-cache-pvc-modelcache-v2.
  json new_source = SourceClaim();
  new_source["metadata"]["name"] = "models-cache-pvc-modelcache-v2";
  cluster.claims.push_back(new_source);
  ClaimsSettings settings = Settings();
  settings.claim_name = "models-cache-pvc-modelcache-v2";
  ClaimsPlan plan = PlanClaims(cluster, settings, kNow);
  EXPECT_THAT(Describe(plan),
              ElementsAre("create persistentvolumeclaim team-a/models-cache-pvc-modelcache-v2",
                          "create persistentvolume team-a/models-cache-pvc-modelcache-v2-team-a"));
  ASSERT_EQ(plan.namespaces.size(), 2u);
  EXPECT_TRUE(plan.namespaces[0].current);
  EXPECT_FALSE(plan.namespaces[1].current);
  EXPECT_EQ(plan.namespaces[1].claim, kClaim);
  EXPECT_THAT(plan.namespaces[1].reasons[0], HasSubstr("previous cache claim"));

  // Someone deleted the old claim once no pod used it: its volume copy goes.
  cluster.claims.erase(cluster.claims.begin() + 1);
  ClaimsPlan later = PlanClaims(cluster, settings, kNow);
  EXPECT_THAT(Describe(later), ::testing::Contains("delete persistentvolume team-a/models-cache-pvc-modelcache-team-a"));
}

TEST(ClaimsPlan, CopiesEditedByHandAreRepairedOrMadeAgain) {
  ClusterState cluster = Healthy();
  cluster.namespaces.push_back(Namespace("team-a", true));
  AddCopy(cluster, "team-a");
  cluster.volumes.back()["spec"]["persistentVolumeReclaimPolicy"] = "Delete";
  cluster.claims.back()["metadata"]["labels"].erase("modelcache.io/source-volume");
  ClaimsPlan plan = PlanClaims(cluster, Settings(), kNow);
  EXPECT_THAT(Describe(plan), ElementsAre("repair persistentvolumeclaim team-a/models-cache-pvc-modelcache",
                                          "repair persistentvolume team-a/models-cache-pvc-modelcache-team-a"));
  cluster.volumes.back()["spec"]["nfs"]["path"] = "/somewhere/else";
  cluster.claims.back()["spec"]["volumeName"] = "another";
  plan = PlanClaims(cluster, Settings(), kNow);
  EXPECT_THAT(Describe(plan), ElementsAre("delete persistentvolumeclaim team-a/models-cache-pvc-modelcache",
                                          "delete persistentvolume team-a/models-cache-pvc-modelcache-team-a"));
}

TEST(ClaimsPlan, NamespaceNamesOverTheLimitAreRefusedByName) {
  EXPECT_TRUE(ValidateNamespaceName("team-a").ok());
  EXPECT_TRUE(ValidateNamespaceName(std::string(63, 'a')).ok());
  absl::Status long_name = ValidateNamespaceName(std::string(64, 'a'));
  EXPECT_EQ(long_name.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(long_name.message()), HasSubstr("64 characters"));
  EXPECT_THAT(std::string(long_name.message()), HasSubstr(std::string(64, 'a')));
  EXPECT_FALSE(ValidateNamespaceName("Team_A").ok());
  EXPECT_FALSE(ValidateNamespaceName("").ok());
  ClusterState cluster = Healthy();
  cluster.asks[std::string(64, 'a')] = kNow;
  EXPECT_EQ(PlanClaims(cluster, Settings(), kNow).problems["invalid_namespace"], 1);
}

}  // namespace
}  // namespace modelcache::claims
