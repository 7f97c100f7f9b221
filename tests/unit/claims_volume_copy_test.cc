// coordinator/claims/volume_copy: the storage check on the PersistentVolume, the copies' names
// and labels, the desired PV and PVC, and the repair patch.
#include "coordinator/claims/volume_copy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelcache::claims {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json Volume(const std::string& name, json source_key, json source, std::string reclaim = "Retain") {
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolume"},
          {"metadata", {{"name", name}, {"uid", "uid-src"}, {"resourceVersion", "7"}}},
          {"spec",
           {{source_key.get<std::string>(), source},
            {"capacity", {{"storage", "300Gi"}}},
            {"accessModes", {"ReadWriteMany"}},
            {"mountOptions", {"nfsvers=4.1", "hard"}},
            {"persistentVolumeReclaimPolicy", reclaim},
            {"storageClassName", "nfs-client"},
            {"claimRef", {{"namespace", "modelcache"}, {"name", "models-cache-pvc-modelcache"}, {"uid", "u1"}}}}}};
}

json Nfs() { return Volume("pvc-1", "nfs", {{"server", "10.0.0.5"}, {"path", "/export/modelcache-pvc-1"}}, "Delete"); }

CopySource SourceOf(json volume) { return CopySource{"modelcache", "models-cache-pvc-modelcache", std::move(volume)}; }

TEST(ClaimsStorageCheck, NfsHostPathAndCsiNfsAreCopied) {
  EXPECT_TRUE(CheckStorage(Nfs(), false).copy);
  EXPECT_EQ(CheckStorage(Nfs(), false).source.type, "nfs");
  json host = Volume("host", "hostPath", {{"path", "/var/lib/modelcache"}});
  EXPECT_TRUE(CheckStorage(host, false).copy);
  json csi = Volume("csi", "csi", {{"driver", "nfs.csi.k8s.io"}, {"volumeHandle", "h"}});
  StorageVerdict verdict = CheckStorage(csi, false);
  EXPECT_TRUE(verdict.copy);
  EXPECT_FALSE(verdict.bypassed);
  EXPECT_EQ(verdict.source.type, "csi nfs.csi.k8s.io");
}

TEST(ClaimsStorageCheck, OtherTypesAreRefusedNamingVolumeTypeAndKey) {
  json ebs = Volume("pvc-ebs", "csi", {{"driver", "ebs.csi.aws.com"}, {"volumeHandle", "vol-1"}});
  StorageVerdict verdict = CheckStorage(ebs, false);
  EXPECT_FALSE(verdict.copy);
  EXPECT_THAT(verdict.message, HasSubstr("\"pvc-ebs\""));
  EXPECT_THAT(verdict.message, HasSubstr("csi ebs.csi.aws.com"));
  EXPECT_THAT(verdict.message, HasSubstr("modelsCacheStorage.bypassStorageCheck"));
  json iscsi = Volume("old", "iscsi", {{"targetPortal", "1.2.3.4"}, {"iqn", "x"}, {"lun", 0}});
  EXPECT_FALSE(CheckStorage(iscsi, false).copy);
  EXPECT_EQ(CheckStorage(iscsi, false).source.type, "iscsi");
}

TEST(ClaimsStorageCheck, BypassCopiesAnywayAndSaysSo) {
  json ebs = Volume("pvc-ebs", "csi", {{"driver", "ebs.csi.aws.com"}, {"volumeHandle", "vol-1"}});
  StorageVerdict verdict = CheckStorage(ebs, true);
  EXPECT_TRUE(verdict.copy);
  EXPECT_TRUE(verdict.bypassed);
  EXPECT_FALSE(verdict.message.empty());
}

TEST(ClaimsStorageCheck, VolumeWithoutSourceIsRefusedEvenWithBypass) {
  json none = Nfs();
  none["spec"].erase("nfs");
  StorageVerdict verdict = CheckStorage(none, true);
  EXPECT_FALSE(verdict.copy);
  EXPECT_THAT(verdict.message, HasSubstr("\"pvc-1\" has no volume source"));
}

TEST(ClaimsVolumeCopy, NfsCopyKeepsTheSourceButIsRetainedPreBoundAndClassless) {
  json copy = DesiredVolume(SourceOf(Nfs()), "team-a", "claim-uid");
  EXPECT_EQ(copy["metadata"]["name"], "models-cache-pvc-modelcache-team-a");
  EXPECT_EQ(copy["spec"]["nfs"], Nfs()["spec"]["nfs"]);
  EXPECT_EQ(copy["spec"]["capacity"]["storage"], "300Gi");
  EXPECT_EQ(copy["spec"]["accessModes"], json({"ReadWriteMany"}));
  EXPECT_EQ(copy["spec"]["mountOptions"], json({"nfsvers=4.1", "hard"}));
  EXPECT_EQ(copy["spec"]["persistentVolumeReclaimPolicy"], "Retain") << "the source says Delete";
  EXPECT_EQ(copy["spec"]["storageClassName"], "");
  EXPECT_EQ(copy["spec"]["claimRef"]["namespace"], "team-a");
  EXPECT_EQ(copy["spec"]["claimRef"]["name"], "models-cache-pvc-modelcache");
  EXPECT_EQ(copy["spec"]["claimRef"]["uid"], "claim-uid");
  const json& labels = copy["metadata"]["labels"];
  EXPECT_EQ(labels["app.kubernetes.io/managed-by"], "modelcache");
  EXPECT_EQ(labels["modelcache.io/source-namespace"], "modelcache");
  EXPECT_EQ(labels["modelcache.io/source-claim"], "models-cache-pvc-modelcache");
  EXPECT_EQ(labels["modelcache.io/source-volume"], "pvc-1");
  EXPECT_EQ(labels["modelcache.io/namespace"], "team-a");
  EXPECT_TRUE(IsOurs(copy));
  EXPECT_FALSE(IsOurs(Nfs()));
}

TEST(ClaimsVolumeCopy, ClaimIsBoundByVolumeNameWithTheSourcesSizeAndModes) {
  json claim = DesiredClaim(SourceOf(Nfs()), "team-a");
  EXPECT_EQ(claim["metadata"]["name"], "models-cache-pvc-modelcache");
  EXPECT_EQ(claim["metadata"]["namespace"], "team-a");
  EXPECT_EQ(claim["spec"]["volumeName"], "models-cache-pvc-modelcache-team-a");
  EXPECT_EQ(claim["spec"]["storageClassName"], "");
  EXPECT_EQ(claim["spec"]["resources"]["requests"]["storage"], "300Gi");
  EXPECT_TRUE(IsOurs(claim));
  EXPECT_FALSE(claim["metadata"]["labels"].contains("modelcache.io/namespace"));
}

TEST(ClaimsVolumeCopy, CsiCopiesGetTheirOwnVolumeHandleAndTheSameAttributes) {
  json csi = Volume("pvc-csi", "csi",
                    {{"driver", "nfs.csi.k8s.io"},
                     {"volumeHandle", "nfs.example#share#pvc-csi#"},
                     {"volumeAttributes", {{"server", "nfs.example"}, {"share", "/share"}, {"subdir", "pvc-csi"}}}});
  json a = DesiredVolume(SourceOf(csi), "team-a", "");
  json b = DesiredVolume(SourceOf(csi), "team-b", "");
  EXPECT_NE(a["spec"]["csi"]["volumeHandle"], csi["spec"]["csi"]["volumeHandle"]);
  EXPECT_NE(a["spec"]["csi"]["volumeHandle"], b["spec"]["csi"]["volumeHandle"]);
  EXPECT_EQ(a["spec"]["csi"]["volumeAttributes"], csi["spec"]["csi"]["volumeAttributes"]);
  EXPECT_EQ(a["spec"]["csi"]["driver"], "nfs.csi.k8s.io");
  EXPECT_FALSE(a["spec"]["claimRef"].contains("uid"));
}

TEST(ClaimsVolumeCopy, LongNamesAreCutWithAHashAndStayDistinct) {
  const std::string claim(240, 'c');
  std::string a = CopyVolumeName(claim, "team-aaaaaaaaaaaaaaaaaaaa");
  std::string b = CopyVolumeName(claim, "team-bbbbbbbbbbbbbbbbbbbb");
  EXPECT_LE(a.size(), 253u);
  EXPECT_NE(a, b);
  EXPECT_EQ(CopyVolumeName("short", "ns"), "short-ns");
  EXPECT_EQ(LabelValue(std::string(63, 'x')), std::string(63, 'x'));
  std::string cut = LabelValue(std::string(64, 'x'));
  EXPECT_LE(cut.size(), 63u);
  EXPECT_NE(cut, LabelValue(std::string(65, 'x')));
}

TEST(ClaimsVolumeCopy, RepairPatchRestoresEditedFieldsWithAResourceVersionPrecondition) {
  json desired = DesiredVolume(SourceOf(Nfs()), "team-a", "claim-uid");
  json actual = desired;
  actual["metadata"]["resourceVersion"] = "42";
  actual["spec"]["claimRef"]["resourceVersion"] = "40";  // the binder's, not a difference
  EXPECT_TRUE(RepairPatch(actual, desired).is_null());
  actual["spec"]["persistentVolumeReclaimPolicy"] = "Delete";
  actual["metadata"]["labels"].erase("modelcache.io/source-claim");
  actual["spec"].erase("mountOptions");
  json patch = RepairPatch(actual, desired);
  ASSERT_FALSE(patch.is_null());
  EXPECT_EQ(patch["metadata"]["resourceVersion"], "42");
  EXPECT_EQ(patch["spec"]["persistentVolumeReclaimPolicy"], "Retain");
  EXPECT_EQ(patch["spec"]["mountOptions"], desired["spec"]["mountOptions"]);
  EXPECT_EQ(patch["metadata"]["labels"]["modelcache.io/source-claim"], "models-cache-pvc-modelcache");
  EXPECT_FALSE(patch["spec"].contains("claimRef"));
  actual = desired;
  actual["spec"]["claimRef"]["uid"] = "old-claim";
  EXPECT_EQ(RepairPatch(actual, desired)["spec"]["claimRef"]["uid"], "claim-uid");
}

TEST(ClaimsVolumeCopy, AnotherVolumeSourceCannotBePatched) {
  json desired = DesiredVolume(SourceOf(Nfs()), "team-a", "");
  json actual = desired;
  EXPECT_TRUE(SameVolumeSource(actual, desired));
  actual["spec"]["nfs"]["path"] = "/elsewhere";
  EXPECT_FALSE(SameVolumeSource(actual, desired));
}

}  // namespace
}  // namespace modelcache::claims
