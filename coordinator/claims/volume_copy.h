#pragma once
// The copy of the cache claim that one namespace gets, as pure functions of the source
// PersistentVolume: the storage check, the names and labels, the desired PV and PVC, and the
// merge patch that repairs a copy edited by hand.
//
//   source namespace (modelcache)            namespace team-a
//   PVC models-cache-pvc-modelcache          PVC models-cache-pvc-modelcache (labelled ours)
//        | volumeName                             | volumeName            ^ claimRef (with uid)
//   PV pvc-1234 (nfs 10.0.0.5:/export/x)     PV models-cache-pvc-modelcache-team-a
//                                              same nfs server/path, capacity, access modes,
//                                              mount options; Retain; storageClassName ""
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace modelcache::claims {

inline constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
inline constexpr char kManagedByValue[] = "modelcache";
inline constexpr char kSourceNamespaceLabel[] = "modelcache.io/source-namespace";
inline constexpr char kSourceClaimLabel[] = "modelcache.io/source-claim";
inline constexpr char kSourceVolumeLabel[] = "modelcache.io/source-volume";
inline constexpr char kCopyNamespaceLabel[] = "modelcache.io/namespace";  // on the PV copies

// The volume source of a PersistentVolume and whether it may be shared across namespaces.
struct VolumeSource {
  std::string key;   // the spec key: "nfs", "hostPath", "csi", "awsElasticBlockStore"...
  std::string type;  // for people: "nfs", "hostPath", "csi nfs.csi.k8s.io", "csi ebs.csi.aws.com"
  bool shareable = false;  // nfs, hostPath and CSI nfs.csi.k8s.io: every pod sees the same files
};

// FAILED_PRECONDITION naming the PV when its spec has no volume source (or two).
absl::StatusOr<VolumeSource> VolumeSourceOf(const nlohmann::json& volume);

// The storage check. `copy`: make copies of this PV (shareable, or bypassed); otherwise
// `message` says why not, naming the PV, its type and the key to change.
struct StorageVerdict {
  bool copy = false;
  bool bypassed = false;  // not shareable, copied because modelsCacheStorage.bypassStorageCheck
  VolumeSource source;
  std::string message;  // "" when shareable
};
StorageVerdict CheckStorage(const nlohmann::json& volume, bool bypass_storage_check);

// "<claim>-<namespace>" (cluster-wide unique, as PV names must be); over 253 characters it is
// cut and ends with a hash of the whole, so distinct pairs keep distinct names.
std::string CopyVolumeName(std::string_view claim_name, std::string_view namespace_name);
// A label value (at most 63 characters): the text, or its start and a hash when longer.
std::string LabelValue(std::string_view text);
// True when the object carries app.kubernetes.io/managed-by=modelcache.
bool IsOurs(const nlohmann::json& object);

// The string at `path` in `object` ("" when missing or not a string).
std::string Str(const nlohmann::json& object, std::initializer_list<const char*> path);

// What every copy is made from.
struct CopySource {
  std::string namespace_name;  // of the source claim
  std::string claim_name;
  nlohmann::json volume;       // the source claim's bound PV
};

// The PV copy for `namespace_name`, pre-bound (claimRef) to the claim of the same name there;
// `claim_uid` ("" when not known yet) pins it to one incarnation of that claim.
nlohmann::json DesiredVolume(const CopySource& source, std::string_view namespace_name,
                             std::string_view claim_uid);
// The PVC copy in `namespace_name`, bound to DesiredVolume by volumeName.
nlohmann::json DesiredClaim(const CopySource& source, std::string_view namespace_name);

// True when the PV's volume source (its nfs/hostPath/csi... key) equals the desired one; a
// different source cannot be patched (it is immutable) and means delete and create again.
bool SameVolumeSource(const nlohmann::json& actual, const nlohmann::json& desired);
// A JSON merge patch (with metadata.resourceVersion, a precondition) that brings the mutable
// fields of `actual` (labels; for a PV reclaim policy, capacity, access modes, mount options,
// storage class, claimRef) back to `desired`; null when nothing differs.
nlohmann::json RepairPatch(const nlohmann::json& actual, const nlohmann::json& desired);

}  // namespace modelcache::claims
