#include "agent/pod_leases/pod_lease_wants.h"

#include "common/names.h"
#include "common/pod_annotations.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::pod_leases {
namespace {

std::string StringAt(const nlohmann::json& object, const nlohmann::json::json_pointer& pointer) {
  if (!object.contains(pointer)) return "";
  const nlohmann::json& value = object.at(pointer);
  return value.is_string() ? value.get<std::string>() : "";
}

}  // namespace

PodLeases LeasesOf(const nlohmann::json& pod) {
  PodLeases leases;
  leases.uid = StringAt(pod, nlohmann::json::json_pointer("/metadata/uid"));
  leases.holder = fmt::format("pod:{}/{}:{}", StringAt(pod, nlohmann::json::json_pointer("/metadata/namespace")),
                              StringAt(pod, nlohmann::json::json_pointer("/metadata/name")), leases.uid);
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& annotations =
      pod.contains("metadata") && pod["metadata"].is_object() && pod["metadata"].contains("annotations") &&
              pod["metadata"]["annotations"].is_object()
          ? pod["metadata"]["annotations"]
          : empty;
  auto annotation = [&](const char* key) {
    auto found = annotations.find(key);
    return found != annotations.end() && found->is_string() ? found->get<std::string>() : std::string();
  };
  const std::string name = annotation(kModelAnnotation);
  if (name.empty()) return leases;
  const std::string version = annotation(kVersionAnnotation);
  const std::string phase = StringAt(pod, nlohmann::json::json_pointer("/status/phase"));
  if (phase == "Succeeded" || phase == "Failed") {
    leases.skipped = fmt::format("pod {}", phase);
  } else if (leases.uid.empty()) {
    leases.skipped = "metadata.uid: missing";
  } else if (absl::Status valid = ValidateModelName(name); !valid.ok()) {
    leases.skipped = fmt::format("{}: {}", kModelAnnotation, std::string(valid.message()));
  } else if (version.empty()) {
    leases.skipped = fmt::format("{}: missing", kVersionAnnotation);
  } else if (absl::Status valid_version = ValidateModelVersion(version); !valid_version.ok()) {
    leases.skipped = fmt::format("{}: {}", kVersionAnnotation, std::string(valid_version.message()));
  } else {
    leases.wants.push_back({name, version});
  }
  return leases;
}

std::string HolderForPeople(std::string_view holder) {
  constexpr std::string_view kPod = "pod:";
  if (!holder.starts_with(kPod)) return std::string(holder);
  const std::string_view rest = holder.substr(kPod.size());
  const size_t uid = rest.rfind(':');
  return "pod " + std::string(uid == std::string_view::npos ? rest : rest.substr(0, uid));
}

}  // namespace modelcache::pod_leases
