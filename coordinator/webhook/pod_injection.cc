#include "coordinator/webhook/pod_injection.h"

#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "common/names.h"
#include "common/pod_annotations.h"
#include "common/status_macros.h"
#include "common/uri.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::webhook {
namespace {

using json = nlohmann::json;

constexpr char kSocketVolume[] = "modelcache-socket";
constexpr char kCacheVolume[] = "modelcache-cache";
constexpr char kModelVolume[] = "modelcache-model";

std::string Annotation(const json& pod, const char* key) {
  const json::json_pointer pointer("/metadata/annotations");
  if (!pod.contains(pointer) || !pod.at(pointer).is_object()) return "";
  const json& annotations = pod.at(pointer);
  auto found = annotations.find(key);
  return found != annotations.end() && found->is_string() ? found->get<std::string>() : "";
}

absl::Status Bad(const char* annotation, const std::string& why) {
  return absl::InvalidArgumentError(fmt::format("annotation {}: {}", annotation, why));
}

bool TrueText(const std::string& text) { return text == "true" || text == "1" || text == "yes"; }

// True when an app container opts out of the cache through its environment.
bool OptedOutByEnv(const json& containers) {
  for (const json& container : containers) {
    if (!container.contains("env") || !container["env"].is_array()) continue;
    for (const json& variable : container["env"]) {
      const std::string name = variable.value("name", "");
      if ((name == "AIOLI_DISABLE_MODEL_CACHE" || name == "MODELCACHE_DISABLE") && variable.contains("value") &&
          variable["value"].is_string() && TrueText(variable["value"].get<std::string>())) {
        return true;
      }
    }
  }
  return false;
}

void AddOrReplaceEnv(json& container, const std::string& name, const std::string& value) {
  if (!container.contains("env") || !container["env"].is_array()) container["env"] = json::array();
  for (json& variable : container["env"]) {
    if (variable.value("name", "") == name) {
      variable = {{"name", name}, {"value", value}};
      return;
    }
  }
  container["env"].push_back({{"name", name}, {"value", value}});
}

// Single-quoted for sh.
std::string Quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

std::string FetchScript(const std::string& cache_root, const std::string& cache_mount, const std::string& local_mount) {
  // fetch prints the model's folder: in the agent's cacheRoot (seen here under the read-only
  // claim mount) or in the local download under .download. Symlinks to its top-level entries
  // give the app one folder with the model's files either way; relative ones for the local
  // copy, so they resolve wherever the emptyDir is mounted.
  return fmt::format(R"(set -eu
path=$(modelcachectl fetch "$@")
local={2}
case "$path" in
  {0}/*) target={1}"${{path#{0}}}" ;;
  "$local"/*) target="${{path#"$local"/}}" ;;
  *) echo "modelcache-fetch: fetch printed $path, outside {0} and $local" >&2; exit 1 ;;
esac
cd "$local"
for entry in "$path"/* "$path"/.[!.]* "$path"/..?*; do
  [ -e "$entry" ] || [ -L "$entry" ] || continue
  name=${{entry##*/}}
  [ "$name" = .download ] && continue
  ln -sfn "$target/$name" "$name"
done
echo "modelcache-fetch: $MODEL_NAME ready from $path"
)",
                     Quote(cache_root), Quote(cache_mount), Quote(local_mount));
}

namespace {

// The init container that fetches the model into the pod's emptyDir (or links it from the
// cache) before the pod's containers start.
json FetchContainer(const InjectionSettings& settings, const std::string& model,
                    const std::string& version, const std::string& source, bool disabled) {
  return json{
      {"name", kFetchContainer},
      {"image", settings.image},
      {"command", {"/bin/sh", "-c", FetchScript(settings.agent_cache_root, kCacheMount, kLocalMount), "modelcache-fetch"}},
      {"args",
       {"--model", model, "--version", version, "--source", source, "--fallback", "--dest",
        std::string(kLocalMount) + "/.download", "--holder", "$(MODELCACHE_HOLDER)"}},
      {"env",
       {{{"name", "MODELCACHE_POD_NAMESPACE"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}},
        {{"name", "MODELCACHE_POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
        {{"name", "MODELCACHE_HOLDER"}, {"value", "$(MODELCACHE_POD_NAMESPACE)/$(MODELCACHE_POD_NAME)"}},
        {{"name", "MODELCACHE_SOCKET"}, {"value", "/run/modelcache/agent.sock"}},
        {{"name", "MODEL_NAME"}, {"value", model + "@" + version}},
        {{"name", "MODELCACHE_DISABLE"}, {"value", disabled ? "true" : "false"}}}},
      {"volumeMounts",
       {{{"name", kSocketVolume}, {"mountPath", "/run/modelcache"}},
        {{"name", kCacheVolume}, {"mountPath", kCacheMount}, {"readOnly", true}},
        {{"name", kModelVolume}, {"mountPath", kLocalMount}}}},
      {"securityContext", {{"allowPrivilegeEscalation", false}, {"capabilities", {{"drop", {"ALL"}}}}}}};
}

// The containers that get the model: those the annotation names (each must exist), or all.
absl::StatusOr<std::set<std::string>> TargetContainers(const json& containers,
                                                      const std::string& wanted) {
  std::set<std::string> present;
  for (const json& container : containers) present.insert(container.value("name", ""));
  if (wanted.empty()) return present;
  std::set<std::string> targets;
  for (absl::string_view name : absl::StrSplit(wanted, ',', absl::SkipWhitespace())) {
    std::string trimmed(absl::StripAsciiWhitespace(name));
    if (!present.contains(trimmed)) {
      return Bad(kContainersAnnotation, fmt::format("the pod has no container \"{}\"", trimmed));
    }
    targets.insert(trimmed);
  }
  return targets;
}

}  // namespace

absl::StatusOr<json> InjectedPod(const json& pod, const InjectionSettings& settings) {
  if (!pod.is_object() || !pod.contains("spec") || !pod["spec"].contains("containers") ||
      !pod["spec"]["containers"].is_array()) {
    return absl::InvalidArgumentError("pod: spec.containers is missing");
  }
  json result = pod;
  if (!Annotation(pod, kInjectedAnnotation).empty()) return result;
  for (const json& init : pod["spec"].value("initContainers", json::array())) {
    if (init.value("name", "") == kFetchContainer) return result;
  }
  const std::string model = Annotation(pod, kModelAnnotation);
  const std::string version = Annotation(pod, kVersionAnnotation);
  const std::string source = Annotation(pod, kSourceAnnotation);
  if (model.empty()) return Bad(kModelAnnotation, "missing");
  if (absl::Status valid = ValidateModelName(model); !valid.ok()) return Bad(kModelAnnotation, std::string(valid.message()));
  if (version.empty()) return Bad(kVersionAnnotation, "missing");
  if (absl::Status valid = ValidateModelVersion(version); !valid.ok()) {
    return Bad(kVersionAnnotation, std::string(valid.message()));
  }
  if (source.empty()) return Bad(kSourceAnnotation, "missing");
  if (absl::StatusOr<SourceUri> uri = ParseSourceUri(source); !uri.ok()) {
    return Bad(kSourceAnnotation, std::string(uri.status().message()));
  }
  std::string mount_path = Annotation(pod, kMountPathAnnotation);
  if (mount_path.empty()) mount_path = "/models/" + model;
  if (mount_path.front() != '/' || mount_path == "/" || mount_path.find("..") != std::string::npos) {
    return Bad(kMountPathAnnotation, fmt::format("\"{}\": want an absolute path without \"..\"", mount_path));
  }
  const std::string disabled_text = Annotation(pod, kDisabledAnnotation);
  if (!disabled_text.empty() && disabled_text != "true" && disabled_text != "false") {
    return Bad(kDisabledAnnotation, fmt::format("\"{}\": want \"true\" or \"false\"", disabled_text));
  }
  json& spec = result["spec"];
  ASSIGN_OR_RETURN(const std::set<std::string> targets,
                   TargetContainers(spec["containers"], Annotation(pod, kContainersAnnotation)));
  const bool disabled = disabled_text == "true" || OptedOutByEnv(spec["containers"]);

  if (!spec.contains("volumes") || !spec["volumes"].is_array()) spec["volumes"] = json::array();
  spec["volumes"].push_back({{"name", kSocketVolume}, {"hostPath", {{"path", settings.socket_host_path}, {"type", "Directory"}}}});
  spec["volumes"].push_back(
      {{"name", kCacheVolume}, {"persistentVolumeClaim", {{"claimName", settings.claim_name}, {"readOnly", true}}}});
  spec["volumes"].push_back({{"name", kModelVolume}, {"emptyDir", json::object()}});

  json init = FetchContainer(settings, model, version, source, disabled);
  if (!spec.contains("initContainers") || !spec["initContainers"].is_array()) spec["initContainers"] = json::array();
  spec["initContainers"].push_back(std::move(init));

  for (json& container : spec["containers"]) {
    if (!targets.contains(container.value("name", ""))) continue;
    if (!container.contains("volumeMounts") || !container["volumeMounts"].is_array()) {
      container["volumeMounts"] = json::array();
    }
    container["volumeMounts"].push_back({{"name", kModelVolume}, {"mountPath", mount_path}, {"readOnly", true}});
    container["volumeMounts"].push_back({{"name", kCacheVolume}, {"mountPath", kCacheMount}, {"readOnly", true}});
    AddOrReplaceEnv(container, "MODEL_PATH", mount_path);
  }
  result["metadata"]["annotations"][kInjectedAnnotation] = model + "@" + version;
  return result;
}

absl::StatusOr<json> AdmissionAnswer(const json& review, const InjectionSettings& settings) {
  if (!review.is_object() || review.value("kind", "") != "AdmissionReview" || !review.contains("request") ||
      !review["request"].is_object()) {
    return absl::InvalidArgumentError("body: want an admission.k8s.io/v1 AdmissionReview with a request");
  }
  const json& request = review["request"];
  json response = {{"uid", request.value("uid", "")}};
  absl::StatusOr<json> injected =
      request.contains("object") ? InjectedPod(request["object"], settings) : absl::InvalidArgumentError("request.object: missing");
  if (!injected.ok()) {
    response["allowed"] = false;
    response["status"] = {{"code", 400}, {"reason", "BadRequest"},
                          {"message", fmt::format("modelcache: {}", std::string(injected.status().message()))}};
  } else {
    response["allowed"] = true;
    json patch = json::diff(request["object"], *injected);
    if (!patch.empty()) {
      response["patchType"] = "JSONPatch";
      response["patch"] = absl::Base64Escape(patch.dump());
    }
  }
  return json{{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", std::move(response)}};
}

}  // namespace modelcache::webhook
