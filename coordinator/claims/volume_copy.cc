#include "coordinator/claims/volume_copy.h"

#include <array>
#include <cstddef>
#include <span>
#include <vector>

#include "common/sha256.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::claims {
namespace {

using nlohmann::json;

constexpr char kNfsCsiDriver[] = "nfs.csi.k8s.io";

// PersistentVolumeSpec keys that are not a volume source.
constexpr std::array<std::string_view, 9> kNotSources = {
    "accessModes",  "capacity",          "claimRef", "mountOptions", "nodeAffinity", "persistentVolumeReclaimPolicy",
    "storageClassName", "volumeMode", "volumeAttributesClassName"};

std::string ShortHash(std::string_view text) {
  Sha256 hash;
  hash.Update(std::as_bytes(std::span(text.data(), text.size())));
  return hash.FinishHex().substr(0, 10);
}

// Cuts `text` to at most `limit` characters, ending with "-<hash>" when it had to cut.
std::string Fit(std::string_view text, size_t limit) {
  if (text.size() <= limit) return std::string(text);
  std::string head(text.substr(0, limit - 11));
  while (!head.empty() && (head.back() == '-' || head.back() == '.' || head.back() == '_')) head.pop_back();
  return head + "-" + ShortHash(text);
}


json Labels(const CopySource& source, std::string_view namespace_name, bool for_volume) {
  json labels = {{kManagedByLabel, kManagedByValue},
                 {kSourceNamespaceLabel, LabelValue(source.namespace_name)},
                 {kSourceClaimLabel, LabelValue(source.claim_name)},
                 {kSourceVolumeLabel, LabelValue(Str(source.volume, {"metadata", "name"}))}};
  if (for_volume) labels[kCopyNamespaceLabel] = std::string(namespace_name);
  return labels;
}

}  // namespace

std::string Str(const json& object, std::initializer_list<const char*> path) {
  const json* node = &object;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return "";
    node = &(*node)[key];
  }
  return node->is_string() ? node->get<std::string>() : "";
}

absl::StatusOr<VolumeSource> VolumeSourceOf(const json& volume) {
  const std::string name = Str(volume, {"metadata", "name"});
  std::vector<std::string> keys;
  if (volume.contains("spec") && volume["spec"].is_object()) {
    for (const auto& [key, value] : volume["spec"].items()) {
      bool source = value.is_object();
      for (std::string_view other : kNotSources) source = source && key != other;
      if (source) keys.push_back(key);
    }
  }
  if (keys.size() != 1) {
    return absl::FailedPreconditionError(fmt::format(
        "persistentvolume \"{}\" has {} volume source{} in its spec ({}): want exactly one, such as nfs, hostPath "
        "or csi",
        name, keys.empty() ? "no" : std::to_string(keys.size()), keys.size() == 1 ? "" : "s",
        keys.empty() ? "none" : fmt::format("{}", fmt::join(keys, ", "))));
  }
  VolumeSource source{.key = keys.front(), .type = keys.front()};
  if (source.key == "csi") {
    const std::string driver = Str(volume, {"spec", "csi", "driver"});
    source.type = "csi " + driver;
    source.shareable = driver == kNfsCsiDriver;
  } else {
    source.shareable = source.key == "nfs" || source.key == "hostPath";
  }
  return source;
}

StorageVerdict CheckStorage(const json& volume, bool bypass_storage_check) {
  StorageVerdict verdict;
  absl::StatusOr<VolumeSource> source = VolumeSourceOf(volume);
  if (!source.ok()) {
    verdict.message = std::string(source.status().message());
    return verdict;  // nothing to copy, bypass or not
  }
  verdict.source = *source;
  if (source->shareable) {
    verdict.copy = true;
    return verdict;
  }
  verdict.message = fmt::format(
      "persistentvolume \"{}\" is {}: only nfs, hostPath and csi {} volumes show every pod the same files, so "
      "only they are copied into other namespaces; set modelsCacheStorage.bypassStorageCheck: true to copy it "
      "anyway",
      Str(volume, {"metadata", "name"}), source->type, kNfsCsiDriver);
  verdict.copy = bypass_storage_check;
  verdict.bypassed = bypass_storage_check;
  return verdict;
}

std::string CopyVolumeName(std::string_view claim_name, std::string_view namespace_name) {
  return Fit(fmt::format("{}-{}", claim_name, namespace_name), 253);
}

std::string LabelValue(std::string_view text) { return Fit(text, 63); }

bool IsOurs(const json& object) { return Str(object, {"metadata", "labels", kManagedByLabel}) == kManagedByValue; }

json DesiredVolume(const CopySource& source, std::string_view namespace_name, std::string_view claim_uid) {
  const json& spec = source.volume.at("spec");
  json copy_spec = json::object();
  absl::StatusOr<VolumeSource> volume_source = VolumeSourceOf(source.volume);
  if (volume_source.ok()) {
    json origin = spec.at(volume_source->key);
    if (volume_source->key == "csi" && origin.contains("volumeHandle")) {
      // CSI volume handles must be unique: the kubelet keys its global mount by the handle. The
      // node mounts from volumeAttributes (server, share, subdir), which are copied unchanged.
      origin["volumeHandle"] =
          fmt::format("{}#modelcache-{}", origin["volumeHandle"].get<std::string>(), namespace_name);
    }
    copy_spec[volume_source->key] = std::move(origin);
  }
  for (const char* key : {"capacity", "accessModes", "mountOptions", "volumeMode", "nodeAffinity"}) {
    if (spec.contains(key)) copy_spec[key] = spec[key];
  }
  // Retain always: deleting the namespace, or this copy, must never delete the shared data.
  copy_spec["persistentVolumeReclaimPolicy"] = "Retain";
  // No class: no provisioner acts on the pair, and no default class is filled in.
  copy_spec["storageClassName"] = "";
  json claim_ref = {{"apiVersion", "v1"},
                    {"kind", "PersistentVolumeClaim"},
                    {"namespace", std::string(namespace_name)},
                    {"name", source.claim_name}};
  if (!claim_uid.empty()) claim_ref["uid"] = std::string(claim_uid);
  copy_spec["claimRef"] = std::move(claim_ref);
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolume"},
          {"metadata",
           {{"name", CopyVolumeName(source.claim_name, namespace_name)}, {"labels", Labels(source, namespace_name, true)}}},
          {"spec", std::move(copy_spec)}};
}

json DesiredClaim(const CopySource& source, std::string_view namespace_name) {
  const json& spec = source.volume.at("spec");
  json claim_spec = {{"accessModes", spec.value("accessModes", json::array({"ReadWriteMany"}))},
                     {"storageClassName", ""},
                     {"volumeName", CopyVolumeName(source.claim_name, namespace_name)}};
  if (spec.contains("capacity") && spec["capacity"].contains("storage")) {
    claim_spec["resources"] = {{"requests", {{"storage", spec["capacity"]["storage"]}}}};
  }
  if (spec.contains("volumeMode")) claim_spec["volumeMode"] = spec["volumeMode"];
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolumeClaim"},
          {"metadata",
           {{"name", source.claim_name},
            {"namespace", std::string(namespace_name)},
            {"labels", Labels(source, namespace_name, false)}}},
          {"spec", std::move(claim_spec)}};
}

bool SameVolumeSource(const json& actual, const json& desired) {
  absl::StatusOr<VolumeSource> want = VolumeSourceOf(desired);
  absl::StatusOr<VolumeSource> have = VolumeSourceOf(actual);
  if (!want.ok() || !have.ok() || want->key != have->key) return false;
  return actual["spec"][have->key] == desired["spec"][want->key];
}

json RepairPatch(const json& actual, const json& desired) {
  json patch = json::object();
  const json& want_labels = desired["metadata"]["labels"];
  for (const auto& [key, value] : want_labels.items()) {
    const json& have = actual["metadata"].value("labels", json::object());
    if (!have.contains(key) || have[key] != value) patch["metadata"]["labels"][key] = value;
  }
  if (desired.value("kind", "") == "PersistentVolume") {
    const json& want = desired["spec"];
    const json& have = actual["spec"];
    for (const char* key : {"persistentVolumeReclaimPolicy", "capacity", "accessModes", "mountOptions", "storageClassName"}) {
      if (want.contains(key) && (!have.contains(key) || have[key] != want[key])) patch["spec"][key] = want[key];
      if (!want.contains(key) && have.contains(key)) patch["spec"][key] = nullptr;
    }
    const json& want_ref = want["claimRef"];
    const json have_ref = have.value("claimRef", json::object());
    for (const char* key : {"namespace", "name", "uid"}) {
      if (want_ref.contains(key) && have_ref.value(key, "") != want_ref[key].get<std::string>()) {
        patch["spec"]["claimRef"] = want_ref;
        break;
      }
    }
  }
  if (patch.empty()) return nullptr;
  patch["metadata"]["resourceVersion"] = actual["metadata"].value("resourceVersion", "");
  return patch;
}

}  // namespace modelcache::claims
