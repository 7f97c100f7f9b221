// Renders every Kustomize directory under deploy/ with `kubectl kustomize` (offline) and checks
// what matters in the rendered objects: the cache claim against the storage config, names with
// the suffix, one image everywhere, flags, probes and ports against each other, the socket on
// the host, tolerations, and no privilege or API access that the daemons do not need.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "agent/config.h"
#include "common/duration.h"
#include <nlohmann/json.hpp>
#include "common/storage_config.h"
#include "coordinator/webhook/pod_injection.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::Contains;
using ::testing::IsSupersetOf;

const std::string kSourceDir = MODELCACHE_SOURCE_DIR;
const std::string kDeployDir = kSourceDir + "/deploy";
const std::string kCacheClaimPrefix = "models-cache-pvc-modelcache";  // models-cache-pvc-<release>
const std::string kNamespace = "modelcache";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// kubectl (with its `kustomize` verb) or kustomize (`build`), whichever is on PATH first;
// empty when neither is.
std::vector<std::string> FindRenderer() {
  const char* path = std::getenv("PATH");
  std::istringstream folders(path == nullptr ? "" : path);
  std::vector<std::string> candidates;
  for (std::string folder; std::getline(folders, folder, ':');) candidates.push_back(folder);
  for (const auto& [program, verb] : {std::pair{"kubectl", "kustomize"}, std::pair{"kustomize", "build"}}) {
    for (const std::string& folder : candidates) {
      std::string binary = folder + "/" + program;
      if (access(binary.c_str(), X_OK) == 0) return {binary, verb};
    }
  }
  return {};
}

struct Rendered {
  std::string error;  // empty when the render succeeded
  std::vector<YAML::Node> objects;
};

Rendered RenderNow(const std::string& directory) {
  Rendered rendered;
  testing::TempDir output_dir;
  testing::SubprocessOptions options;
  options.argv = FindRenderer();
  options.argv.push_back(directory);
  options.stdout_path = output_dir.Join("rendered.yaml");
  options.stderr_path = output_dir.Join("stderr.txt");
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> renderer = testing::Subprocess::Start(options);
  if (!renderer.ok()) {
    rendered.error = std::string(renderer.status().message());
    return rendered;
  }
  absl::StatusOr<testing::ExitStatus> exit = (*renderer)->WaitExit(std::chrono::seconds(60));
  if (!exit.ok() || !exit->Success()) {
    rendered.error = options.argv[0] + " on " + directory + ": " +
                     (exit.ok() ? exit->ToString() : std::string(exit.status().message())) + ": " +
                     testing::ReadTestFile(options.stderr_path);
    return rendered;
  }
  try {
    for (const YAML::Node& object : YAML::LoadAll(testing::ReadTestFile(options.stdout_path))) {
      if (object.IsMap()) rendered.objects.push_back(object);
    }
  } catch (const YAML::Exception& error) {
    rendered.error = "rendered YAML does not parse: " + std::string(error.what());
  }
  return rendered;
}

// Renders are cached for the test binary's life: each takes a fraction of a second and every
// test reads several.
const Rendered& Render(const std::string& relative_directory) {
  static std::map<std::string, Rendered> cache;
  auto found = cache.find(relative_directory);
  if (found == cache.end()) {
    found = cache.emplace(relative_directory, RenderNow(kDeployDir + "/" + relative_directory)).first;
  }
  return found->second;
}

std::string Str(const YAML::Node& node) { return node.IsDefined() && node.IsScalar() ? node.Scalar() : ""; }

// One step of a path into a document: a map key or a sequence index.
struct PathStep {
  PathStep(const char* key) : key(key) {}
  PathStep(std::string key) : key(std::move(key)) {}
  PathStep(int index) : index(index) {}
  std::string key;
  int index = -1;
};

// The node at `path` under `node`, or an undefined node when any step is missing. yaml-cpp
// throws when a lookup goes on from a missing key, and many checks here expect absence.
YAML::Node At(const YAML::Node& node, std::initializer_list<PathStep> path) {
  // Node::operator= would overwrite the node it refers to; reset() re-points the handle.
  YAML::Node current;
  current.reset(node);
  for (const PathStep& step : path) {
    if (!current.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    if (step.index >= 0) {
      if (!current.IsSequence() || static_cast<size_t>(step.index) >= current.size()) {
        return YAML::Node(YAML::NodeType::Undefined);
      }
      YAML::Node next = std::as_const(current)[step.index];
      current.reset(next);
    } else {
      if (!current.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
      YAML::Node next = std::as_const(current)[step.key];
      if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
      current.reset(next);
    }
  }
  return current;
}

std::vector<YAML::Node> OfKind(const Rendered& rendered, std::string_view kind) {
  std::vector<YAML::Node> found;
  for (const YAML::Node& object : rendered.objects) {
    if (Str(object["kind"]) == kind) found.push_back(object);
  }
  return found;
}

YAML::Node Find(const Rendered& rendered, std::string_view kind, std::string_view name) {
  for (const YAML::Node& object : OfKind(rendered, kind)) {
    if (Str(At(object, {"metadata", "name"})) == name) return object;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node PodSpec(const YAML::Node& workload) { return At(workload, {"spec", "template", "spec"}); }

// Init containers first, then the containers.
std::vector<YAML::Node> Containers(const YAML::Node& pod_spec) {
  std::vector<YAML::Node> containers;
  for (const char* list : {"initContainers", "containers"}) {
    for (const YAML::Node& container : pod_spec[list]) containers.push_back(container);
  }
  return containers;
}

YAML::Node Container(const YAML::Node& pod_spec, std::string_view name) {
  for (const YAML::Node& container : Containers(pod_spec)) {
    if (Str(container["name"]) == name) return container;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::vector<YAML::Node> Workloads(const Rendered& rendered) {
  std::vector<YAML::Node> workloads;
  for (const char* kind : {"Deployment", "DaemonSet", "StatefulSet", "Job"}) {
    for (const YAML::Node& workload : OfKind(rendered, kind)) workloads.push_back(workload);
  }
  return workloads;
}

std::vector<std::string> Args(const YAML::Node& container) {
  std::vector<std::string> args;
  for (const YAML::Node& arg : container["args"]) args.push_back(Str(arg));
  return args;
}

// The value of `--flag=value` or `--flag value` in the container's args; "" when absent.
std::string Flag(const YAML::Node& container, std::string_view flag) {
  std::vector<std::string> args = Args(container);
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].starts_with(std::string(flag) + "=")) return args[i].substr(flag.size() + 1);
    if (args[i] == flag && i + 1 < args.size()) return args[i + 1];
  }
  return "";
}

bool HasArg(const YAML::Node& container, std::string_view arg) {
  std::vector<std::string> args = Args(container);
  return std::find(args.begin(), args.end(), arg) != args.end();
}

// A probe's or Service's port, by number or by the container port's name.
int ResolvePort(const YAML::Node& container, const YAML::Node& port) {
  std::string text = Str(port);
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit)) return std::stoi(text);
  for (const YAML::Node& container_port : container["ports"]) {
    if (Str(container_port["name"]) == text) return container_port["containerPort"].as<int>();
  }
  return -1;
}

int ContainerPort(const YAML::Node& container, std::string_view name) {
  for (const YAML::Node& port : container["ports"]) {
    if (Str(port["name"]) == name) return port["containerPort"].as<int>();
  }
  return -1;
}

int PortOf(std::string_view host_port) {
  size_t colon = host_port.rfind(':');
  return colon == std::string_view::npos ? -1 : std::stoi(std::string(host_port.substr(colon + 1)));
}

YAML::Node Volume(const YAML::Node& pod_spec, std::string_view name) {
  for (const YAML::Node& volume : pod_spec["volumes"]) {
    if (Str(volume["name"]) == name) return volume;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// The volume mounted at `mount_path` in the container, with its mount.
std::pair<YAML::Node, YAML::Node> VolumeAt(const YAML::Node& pod_spec, const YAML::Node& container,
                                           std::string_view mount_path) {
  for (const YAML::Node& mount : container["volumeMounts"]) {
    if (Str(mount["mountPath"]) == mount_path) return {Volume(pod_spec, Str(mount["name"])), mount};
  }
  return {YAML::Node(YAML::NodeType::Undefined), YAML::Node(YAML::NodeType::Undefined)};
}

// A key of the modelcache-config ConfigMap, parsed.
YAML::Node ConfigFile(const Rendered& rendered, std::string_view key) {
  YAML::Node config_map = Find(rendered, "ConfigMap", "modelcache-config");
  std::string text = Str(At(config_map, {"data", std::string(key)}));
  if (text.empty()) return YAML::Node(YAML::NodeType::Undefined);
  return YAML::Load(text);
}

std::string ProjectVersion() {
  std::smatch match;
  std::string cmake = ReadFile(kSourceDir + "/CMakeLists.txt");
  if (!std::regex_search(cmake, match, std::regex(R"(project\(modelcache VERSION ([0-9.]+))"))) return "";
  return match[1];
}

std::vector<std::string> OverlayNames() {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(kDeployDir + "/overlays")) {
    if (fs::exists(entry.path() / "kustomization.yaml")) names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Every rendered directory: base, each overlay, the examples.
std::vector<std::string> AllDirectories() {
  std::vector<std::string> directories = {"base", "examples"};
  for (const std::string& overlay : OverlayNames()) directories.push_back("overlays/" + overlay);
  return directories;
}

// The overlays that keep the cache on a claim (all but hostpath), and base.
const std::vector<std::string> kClaimDirectories = {"base", "overlays/nfs-client", "overlays/nfs-manual",
                                                    "overlays/switch-storage", "overlays/monitoring"};

class DeployRender : public ::testing::Test {
 protected:
  void SetUp() override {
    if (FindRenderer().empty()) GTEST_SKIP() << "neither kubectl nor kustomize is on PATH: cannot render deploy/";
  }
};

TEST_F(DeployRender, EveryKustomizationRendersToWellFormedObjects) {
  EXPECT_THAT(OverlayNames(), IsSupersetOf({"hostpath", "monitoring", "nfs-client", "nfs-manual", "switch-storage",
                                            "webhook", "webhook-cert-manager"}));
  for (const std::string& directory : AllDirectories()) {
    const Rendered& rendered = Render(directory);
    ASSERT_EQ(rendered.error, "") << directory;
    EXPECT_FALSE(rendered.objects.empty()) << directory;
    for (const YAML::Node& object : rendered.objects) {
      EXPECT_NE(Str(object["apiVersion"]), "") << directory << ": " << object;
      EXPECT_NE(Str(object["kind"]), "") << directory << ": " << object;
      EXPECT_NE(Str(At(object, {"metadata", "name"})), "") << directory << ": " << object;
    }
  }
}

TEST_F(DeployRender, BaseHasEveryComponentInTheNamespace) {
  const Rendered& base = Render("base");
  ASSERT_EQ(base.error, "");
  EXPECT_TRUE(Find(base, "Namespace", kNamespace).IsDefined());
  EXPECT_TRUE(Find(base, "Deployment", "modelcache-coordinator").IsDefined());
  EXPECT_TRUE(Find(base, "Service", "modelcache-coordinator").IsDefined());
  EXPECT_TRUE(Find(base, "PersistentVolumeClaim", "modelcache-coordinator-data").IsDefined());
  EXPECT_TRUE(Find(base, "DaemonSet", "modelcache-agent").IsDefined());
  EXPECT_TRUE(Find(base, "ServiceAccount", "modelcache-agent").IsDefined());
  EXPECT_TRUE(Find(base, "ServiceAccount", "modelcache-coordinator").IsDefined());
  EXPECT_TRUE(Find(base, "ConfigMap", "modelcache-config").IsDefined());
  EXPECT_TRUE(Find(base, "PersistentVolumeClaim", kCacheClaimPrefix).IsDefined());
  const std::set<std::string> cluster_scoped = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                                                "ClusterRoleBinding", "MutatingWebhookConfiguration"};
  for (const std::string& directory : AllDirectories()) {
    for (const YAML::Node& object : Render(directory).objects) {
      if (cluster_scoped.contains(Str(object["kind"]))) continue;
      // The example inference Deployment runs in a namespace of its own, as users' services do.
      if (directory == "examples" && Str(object["kind"]) == "Deployment") continue;
      EXPECT_EQ(Str(At(object, {"metadata", "namespace"})), kNamespace)
          << directory << ": " << object["kind"] << "/" << At(object, {"metadata", "name"});
    }
  }
}

TEST_F(DeployRender, WorkloadSelectorsMatchTheirPodLabels) {
  for (const std::string& directory : AllDirectories()) {
    for (const YAML::Node& workload : Workloads(Render(directory))) {
      if (Str(workload["kind"]) == "Job") continue;
      const YAML::Node& match_labels = At(workload, {"spec", "selector", "matchLabels"});
      ASSERT_TRUE(match_labels.IsMap()) << directory << ": " << At(workload, {"metadata", "name"});
      for (const auto& label : match_labels) {
        EXPECT_EQ(Str(At(workload, {"spec", "template", "metadata", "labels", label.first.Scalar()})), Str(label.second))
            << directory << ": " << At(workload, {"metadata", "name"}) << " label " << label.first;
      }
    }
  }
}

// The claim the agent serves from: named after pvcNameSuffix, ReadWriteMany, of the class and
// size that modelsCacheStorage names, mounted at the agent's --cache-root.
TEST_F(DeployRender, CacheClaimIsReadWriteManyAndFollowsTheStorageConfig) {
  for (const std::string& directory : kClaimDirectories) {
    const Rendered& rendered = Render(directory);
    ASSERT_EQ(rendered.error, "") << directory;
    YAML::Node storage = ConfigFile(rendered, "config.yaml")["modelsCacheStorage"];
    ASSERT_TRUE(storage.IsMap()) << directory;
    std::string claim_name = kCacheClaimPrefix + Str(storage["pvcNameSuffix"]);
    YAML::Node claim = Find(rendered, "PersistentVolumeClaim", claim_name);
    ASSERT_TRUE(claim.IsDefined()) << directory << ": no claim " << claim_name;
    ASSERT_EQ(At(claim, {"spec", "accessModes"}).size(), 1u) << directory;
    EXPECT_EQ(Str(At(claim, {"spec", "accessModes", 0})), "ReadWriteMany") << directory;
    EXPECT_TRUE(At(claim, {"spec", "storageClassName"}).IsDefined()) << directory << ": no storageClassName";
    EXPECT_EQ(Str(At(claim, {"spec", "storageClassName"})), Str(storage["storageClassName"])) << directory;
    EXPECT_EQ(Str(At(claim, {"spec", "resources", "requests", "storage"})), Str(storage["storageSize"])) << directory;

    YAML::Node daemon_set = Find(rendered, "DaemonSet", "modelcache-agent");
    YAML::Node agent = Container(PodSpec(daemon_set), "agent");
    std::string cache_root = Flag(agent, "--cache-root");
    EXPECT_EQ(cache_root, Str(ConfigFile(rendered, "config.yaml")["cacheRoot"])) << directory;
    auto [volume, mount] = VolumeAt(PodSpec(daemon_set), agent, cache_root);
    EXPECT_EQ(Str(At(volume, {"persistentVolumeClaim", "claimName"})), claim_name) << directory;
    EXPECT_NE(Str(mount["readOnly"]), "true") << directory;
  }
}

TEST_F(DeployRender, NfsClientDefinesTheStorageClassTheConfigNames) {
  const Rendered& rendered = Render("overlays/nfs-client");
  ASSERT_EQ(rendered.error, "");
  std::string class_name = Str(At(ConfigFile(rendered, "config.yaml"), {"modelsCacheStorage", "storageClassName"}));
  YAML::Node storage_class = Find(rendered, "StorageClass", class_name);
  ASSERT_TRUE(storage_class.IsDefined()) << "no StorageClass " << class_name;
  EXPECT_NE(Str(storage_class["provisioner"]), "");
  EXPECT_NE(Str(At(storage_class, {"parameters", "server"})), "");
  EXPECT_NE(Str(At(storage_class, {"parameters", "share"})), "");
  // An NFS claim cannot be resized (README, "NFS"): the API server must refuse a resize rather
  // than accept one that never happens. Absent would mean false too; say it.
  EXPECT_EQ(Str(storage_class["allowVolumeExpansion"]), "false");
}

TEST_F(DeployRender, NfsManualBindsTheCacheToAHandWrittenRetainedNfsVolume) {
  const Rendered& rendered = Render("overlays/nfs-manual");
  ASSERT_EQ(rendered.error, "");
  YAML::Node storage = ConfigFile(rendered, "config.yaml")["modelsCacheStorage"];
  std::string claim_name = kCacheClaimPrefix + Str(storage["pvcNameSuffix"]);
  YAML::Node claim = Find(rendered, "PersistentVolumeClaim", claim_name);
  ASSERT_TRUE(claim.IsDefined());
  // "" and not absent: absent means the cluster's default class, which would provision a new
  // volume instead of binding to this one.
  ASSERT_TRUE(At(claim, {"spec", "storageClassName"}).IsDefined());
  EXPECT_EQ(Str(At(claim, {"spec", "storageClassName"})), "");
  YAML::Node volume = Find(rendered, "PersistentVolume", Str(At(claim, {"spec", "volumeName"})));
  ASSERT_TRUE(volume.IsDefined()) << "the claim's volumeName is not a rendered PersistentVolume";
  EXPECT_EQ(Str(At(volume, {"spec", "persistentVolumeReclaimPolicy"})), "Retain");
  EXPECT_EQ(Str(At(volume, {"spec", "storageClassName"})), "");
  EXPECT_THAT(At(volume, {"spec", "accessModes"}).as<std::vector<std::string>>(), Contains("ReadWriteMany"));
  EXPECT_EQ(Str(At(volume, {"spec", "capacity", "storage"})), Str(storage["storageSize"]));
  EXPECT_NE(Str(At(volume, {"spec", "nfs", "server"})), "");
  EXPECT_THAT(Str(At(volume, {"spec", "nfs", "path"})), ::testing::StartsWith("/"));
  EXPECT_EQ(Str(At(volume, {"spec", "claimRef", "name"})), claim_name);
  EXPECT_EQ(Str(At(volume, {"spec", "claimRef", "namespace"})), Str(At(claim, {"metadata", "namespace"})));
}

TEST_F(DeployRender, SwitchStorageNamesTheNewClaimWithTheSuffixAndKeepsTheOldOne) {
  const Rendered& rendered = Render("overlays/switch-storage");
  ASSERT_EQ(rendered.error, "");
  std::string suffix = Str(At(ConfigFile(rendered, "config.yaml"), {"modelsCacheStorage", "pvcNameSuffix"}));
  EXPECT_EQ(suffix, "-v2");
  EXPECT_EQ(Str(At(ConfigFile(rendered, "coordinator.yaml"), {"modelsCacheStorage", "pvcNameSuffix"})), suffix);
  YAML::Node new_claim = Find(rendered, "PersistentVolumeClaim", kCacheClaimPrefix + suffix);
  ASSERT_TRUE(new_claim.IsDefined());
  // The old cache is neither deleted nor dropped from the agent: cleanup and migrate reach it
  // through the agent.
  ASSERT_TRUE(Find(rendered, "PersistentVolumeClaim", kCacheClaimPrefix).IsDefined());
  YAML::Node pod_spec = PodSpec(Find(rendered, "DaemonSet", "modelcache-agent"));
  std::set<std::string> claims;
  for (const YAML::Node& volume : pod_spec["volumes"]) claims.insert(Str(At(volume, {"persistentVolumeClaim", "claimName"})));
  EXPECT_TRUE(claims.contains(kCacheClaimPrefix));
  EXPECT_TRUE(claims.contains(kCacheClaimPrefix + suffix));
}

TEST_F(DeployRender, HostpathPutsTheCacheOnEachNodeAndRendersNoCacheClaim) {
  const Rendered& rendered = Render("overlays/hostpath");
  ASSERT_EQ(rendered.error, "");
  for (const YAML::Node& claim : OfKind(rendered, "PersistentVolumeClaim")) {
    EXPECT_FALSE(Str(At(claim, {"metadata", "name"})).starts_with("models-cache-pvc-")) << At(claim, {"metadata", "name"});
  }
  YAML::Node daemon_set = Find(rendered, "DaemonSet", "modelcache-agent");
  YAML::Node agent = Container(PodSpec(daemon_set), "agent");
  auto [volume, mount] = VolumeAt(PodSpec(daemon_set), agent, Flag(agent, "--cache-root"));
  ASSERT_TRUE(volume.IsDefined());
  EXPECT_FALSE(volume["persistentVolumeClaim"].IsDefined());
  EXPECT_THAT(Str(At(volume, {"hostPath", "path"})), ::testing::StartsWith("/"));
  EXPECT_EQ(Str(At(volume, {"hostPath", "type"})), "DirectoryOrCreate");
  EXPECT_EQ(Str(At(ConfigFile(rendered, "config.yaml"), {"modelsCacheStorage", "bypassStorageCheck"})), "false");
}

TEST_F(DeployRender, ConfigCarriesExactlyTheSeedStorageKeysForBothDaemons) {
  const Rendered& base = Render("base");
  ASSERT_EQ(base.error, "");
  const std::map<std::string, std::string> seed = {
      {"enabled", "true"},
      {"storageSize", "300Gi"},
      {"storageClassName", "nfs-client"},
      {"pvcNameSuffix", ""},
      {"bypassStorageCheck", "false"},
      // The code's defaults (StorageConfig), spelt as docs/configuration.md spells them; the
      // next test compares the parsed values with StorageConfig{}.
      {"checkUnusedCachedModelsEvery", "1h"},
      {"purgeUnusedCachedModelsAfter", "7d"},
  };
  for (const char* key : {"config.yaml", "coordinator.yaml"}) {
    YAML::Node storage = ConfigFile(base, key)["modelsCacheStorage"];
    ASSERT_TRUE(storage.IsMap()) << key;
    std::map<std::string, std::string> found;
    for (const auto& entry : storage) found[entry.first.Scalar()] = Str(entry.second);
    EXPECT_EQ(found, seed) << key;
  }
}

// The daemons' own parser accepts every rendered config, and reads what the claim says and the
// code's default intervals: deploy/ does not tell another story than the daemons without it.
TEST_F(DeployRender, StorageConfigParsesWithTheDaemonsLoaderInEveryKustomization) {
  const StorageConfig code_defaults;
  for (const std::string& directory : AllDirectories()) {
    if (directory == "examples") continue;
    const Rendered& rendered = Render(directory);
    YAML::Node config_map = Find(rendered, "ConfigMap", "modelcache-config");
    for (const char* key : {"config.yaml", "coordinator.yaml"}) {
      std::string text = Str(At(config_map, {"data", key}));
      ASSERT_NE(text, "") << directory << " " << key;
      absl::StatusOr<StorageConfig> storage = ParseStorageConfigYaml(text);
      ASSERT_TRUE(storage.ok()) << directory << " " << key << ": " << storage.status();
      EXPECT_TRUE(storage->enabled) << directory << " " << key;
      EXPECT_FALSE(storage->bypass_storage_check) << directory << " " << key;
      EXPECT_EQ(storage->storage_size_bytes, 300ull << 30) << directory << " " << key;
      EXPECT_EQ(storage->check_unused_every, code_defaults.check_unused_every) << directory << " " << key;
      EXPECT_EQ(storage->purge_unused_after, code_defaults.purge_unused_after) << directory << " " << key;
      YAML::Node claim = Find(rendered, "PersistentVolumeClaim", kCacheClaimPrefix + storage->pvc_name_suffix);
      if (directory == "overlays/hostpath") {
        EXPECT_FALSE(claim.IsDefined()) << directory;
      } else {
        ASSERT_TRUE(claim.IsDefined()) << directory << ": no claim for suffix '" << storage->pvc_name_suffix << "'";
        EXPECT_EQ(Str(At(claim, {"spec", "storageClassName"})), storage->storage_class_name) << directory;
      }
    }
  }
}

// The README and docs/ show the same default intervals as the code (and, by the two tests above,
// as deploy/): in docs/configuration.md's table (`| `key` | `default` |`) and wherever they
// show the key in a YAML example (`key: value`). Needs no renderer.
TEST(DocumentedDefaults, PurgeIntervalsInTheReadmeAndDocsAreTheCodeDefaults) {
  const StorageConfig code_defaults;
  const std::map<std::string, std::chrono::seconds> defaults = {
      {"checkUnusedCachedModelsEvery", code_defaults.check_unused_every},
      {"purgeUnusedCachedModelsAfter", code_defaults.purge_unused_after}};
  std::vector<std::string> documents = {kSourceDir + "/README.md", kDeployDir + "/README.md"};
  for (const fs::directory_entry& entry : fs::directory_iterator(kSourceDir + "/docs")) {
    if (entry.path().extension() == ".md") documents.push_back(entry.path().string());
  }
  std::map<std::string, int> table_rows;
  for (const std::string& document : documents) {
    const std::string text = ReadFile(document);
    for (const auto& [key, value] : defaults) {
      const std::regex table_row("\\| `" + key + "` \\| `([^`]+)` \\|");
      const std::regex yaml_line(key + ": *([0-9]+[a-z])\\b");
      for (const std::regex* pattern : {&table_row, &yaml_line}) {
        for (auto match = std::sregex_iterator(text.begin(), text.end(), *pattern); match != std::sregex_iterator();
             ++match) {
          absl::StatusOr<std::chrono::seconds> shown = ParseDuration((*match)[1].str());
          ASSERT_TRUE(shown.ok()) << document << ": " << match->str() << ": " << shown.status();
          EXPECT_EQ(*shown, value) << document << ": " << match->str() << " is not the code's default "
                                   << FormatDuration(value);
          if (pattern == &table_row) ++table_rows[key];
        }
      }
    }
  }
  // The reference table lists each key once, in docs/configuration.md.
  EXPECT_EQ(table_rows["checkUnusedCachedModelsEvery"], 1);
  EXPECT_EQ(table_rows["purgeUnusedCachedModelsAfter"], 1);
}

// What pods may make the agent fetch: deploy/ ships no file:// folder and the built-in deny list
// with nothing allowed past it; the agent's own parser reads every rendered config.
TEST_F(DeployRender, AgentConfigShipsTheSafeSourceDefaults) {
  for (const std::string& directory : AllDirectories()) {
    if (directory == "examples") continue;
    const Rendered& rendered = Render(directory);
    std::string text = Str(At(Find(rendered, "ConfigMap", "modelcache-config"), {"data", "config.yaml"}));
    ASSERT_NE(text, "") << directory;
    ProcessEnvironment environment;
    environment.hostname = "node-a";
    absl::StatusOr<AgentConfig> config = ParseAgentConfig(text, AgentFlags{}, environment);
    ASSERT_TRUE(config.ok()) << directory << ": " << config.status();
    EXPECT_TRUE(config->file_sources.empty()) << directory;
    EXPECT_TRUE(config->network.enforced) << directory;
    EXPECT_TRUE(config->network.allow.empty()) << directory;
  }
}

// The overlays carry copies of base's config files; each copy may differ from base only in the
// key it exists to change.
TEST_F(DeployRender, OverlayConfigsDifferFromBaseOnlyInTheKeyTheyChange) {
  const std::map<std::string, std::string> changed_key = {{"overlays/nfs-manual", "storageClassName"},
                                                          {"overlays/switch-storage", "pvcNameSuffix"}};
  const Rendered& base = Render("base");
  ASSERT_EQ(base.error, "");
  for (const std::string& overlay : OverlayNames()) {
    std::string directory = "overlays/" + overlay;
    const Rendered& rendered = Render(directory);
    ASSERT_EQ(rendered.error, "") << directory;
    for (const char* key : {"config.yaml", "coordinator.yaml"}) {
      YAML::Node expected = ConfigFile(base, key);
      YAML::Node actual = ConfigFile(rendered, key);
      ASSERT_TRUE(actual.IsMap()) << directory << " " << key;
      auto found = changed_key.find(directory);
      if (found != changed_key.end()) {
        EXPECT_NE(Str(At(actual, {"modelsCacheStorage", found->second})), Str(At(expected, {"modelsCacheStorage", found->second})))
            << directory << " " << key << ": " << found->second << " is not changed";
        expected["modelsCacheStorage"].remove(found->second);
        actual["modelsCacheStorage"].remove(found->second);
      }
      if (directory.starts_with("overlays/webhook") && std::string(key) == "coordinator.yaml") {
        // The webhook overlay exists to turn the webhook on (its block is checked below).
        ASSERT_TRUE(actual["webhook"].IsMap()) << directory;
        EXPECT_EQ(Str(At(actual, {"webhook", "enabled"})), "true") << directory;
        actual.remove("webhook");
      }
      if (directory == "overlays/switch-storage" && std::string(key) == "config.yaml") {
        // The old volume stays reachable for migrate and cleanup, at the path the overlay
        // mounts it.
        ASSERT_TRUE(actual["extraVolumes"].IsSequence()) << directory;
        EXPECT_EQ(Str(actual["extraVolumes"][0]), "/cache-previous") << directory;
        actual.remove("extraVolumes");
      }
      EXPECT_EQ(YAML::Dump(actual), YAML::Dump(expected)) << directory << " " << key;
    }
  }
}

TEST_F(DeployRender, EveryModelcacheContainerRunsTheOneImageAtTheProjectVersion) {
  std::string version = ProjectVersion();
  ASSERT_NE(version, "");
  const std::string image = "modelcache/modelcache:" + version;
  const std::set<std::string> binaries = {"/usr/local/bin/modelcache-agent", "/usr/local/bin/modelcache-coordinator",
                                          "/usr/local/bin/modelcachectl", "/bin/sh"};
  int checked = 0;
  for (const std::string& directory : AllDirectories()) {
    for (const YAML::Node& workload : Workloads(Render(directory))) {
      for (const YAML::Node& container : Containers(PodSpec(workload))) {
        std::string name = Str(At(workload, {"metadata", "name"})) + "/" + Str(container["name"]);
        if (!Str(container["image"]).starts_with("modelcache/")) continue;
        EXPECT_EQ(Str(container["image"]), image) << directory << ": " << name;
        EXPECT_TRUE(binaries.contains(Str(At(container, {"command", 0})))) << directory << ": " << name;
        ++checked;
      }
    }
  }
  // agent + its init container, coordinator, the cleanup Job, at least (the example's fetch
  // container is the webhook's to add).
  EXPECT_GE(checked, 4);
  const Rendered& base = Render("base");
  EXPECT_EQ(Str(Container(PodSpec(Find(base, "DaemonSet", "modelcache-agent")), "agent")["image"]), image);
  EXPECT_EQ(Str(Container(PodSpec(Find(base, "Deployment", "modelcache-coordinator")), "coordinator")["image"]), image);
}

TEST_F(DeployRender, AgentFlagsConfigProbesAndPortsAgree) {
  for (const std::string& directory : AllDirectories()) {
    if (directory == "examples") continue;
    const Rendered& rendered = Render(directory);
    YAML::Node daemon_set = Find(rendered, "DaemonSet", "modelcache-agent");
    ASSERT_TRUE(daemon_set.IsDefined()) << directory;
    YAML::Node pod_spec = PodSpec(daemon_set);
    YAML::Node agent = Container(pod_spec, "agent");
    ASSERT_TRUE(agent.IsDefined()) << directory;
    YAML::Node config = ConfigFile(rendered, "config.yaml");
    EXPECT_EQ(Str(At(agent, {"command", 0})), "/usr/local/bin/modelcache-agent");

    std::string metrics_address = Flag(agent, "--metrics-address");
    EXPECT_EQ(metrics_address, "0.0.0.0:9464") << directory;
    EXPECT_EQ(Str(config["metricsAddress"]), metrics_address) << directory;
    EXPECT_EQ(Str(config["socket"]), Flag(agent, "--socket")) << directory;
    int metrics_port = PortOf(metrics_address);
    EXPECT_EQ(ContainerPort(agent, "metrics"), metrics_port) << directory;
    EXPECT_EQ(Str(At(agent, {"livenessProbe", "httpGet", "path"})), "/healthz") << directory;
    EXPECT_EQ(ResolvePort(agent, At(agent, {"livenessProbe", "httpGet", "port"})), metrics_port) << directory;
    EXPECT_EQ(Str(At(agent, {"readinessProbe", "httpGet", "path"})), "/readyz") << directory;
    EXPECT_EQ(ResolvePort(agent, At(agent, {"readinessProbe", "httpGet", "port"})), metrics_port) << directory;
    if (agent["startupProbe"].IsDefined()) {
      EXPECT_EQ(ResolvePort(agent, At(agent, {"startupProbe", "httpGet", "port"})), metrics_port) << directory;
    }
    const YAML::Node& annotations = At(daemon_set, {"spec", "template", "metadata", "annotations"});
    EXPECT_EQ(Str(annotations["prometheus.io/scrape"]), "true") << directory;
    EXPECT_EQ(Str(annotations["prometheus.io/port"]), std::to_string(metrics_port)) << directory;
    EXPECT_EQ(Str(annotations["prometheus.io/path"]), "/metrics") << directory;

    // --config names a file of the mounted ConfigMap.
    fs::path config_path = Flag(agent, "--config");
    auto [config_volume, config_mount] = VolumeAt(pod_spec, agent, config_path.parent_path().string());
    EXPECT_EQ(Str(At(config_volume, {"configMap", "name"})), "modelcache-config") << directory;
    EXPECT_EQ(config_path.filename(), "config.yaml") << directory;
  }
}

TEST_F(DeployRender, AgentRunsOnEveryNodeWithItsSocketOnTheHostAndItsNodeName) {
  for (const std::string& directory : AllDirectories()) {
    if (directory == "examples") continue;
    YAML::Node daemon_set = Find(Render(directory), "DaemonSet", "modelcache-agent");
    ASSERT_TRUE(daemon_set.IsDefined()) << directory;
    YAML::Node pod_spec = PodSpec(daemon_set);
    // A toleration with operator Exists and no key or effect tolerates every taint.
    bool tolerates_everything = false;
    for (const YAML::Node& toleration : pod_spec["tolerations"]) {
      tolerates_everything |= Str(toleration["operator"]) == "Exists" && !toleration["key"].IsDefined() &&
                              !toleration["effect"].IsDefined();
    }
    EXPECT_TRUE(tolerates_everything) << directory;
    EXPECT_FALSE(pod_spec["nodeSelector"].IsDefined()) << directory;
    EXPECT_FALSE(pod_spec["affinity"].IsDefined()) << directory;

    YAML::Node agent = Container(pod_spec, "agent");
    fs::path socket = Flag(agent, "--socket");
    EXPECT_EQ(socket, "/run/modelcache/agent.sock") << directory;
    auto [socket_volume, socket_mount] = VolumeAt(pod_spec, agent, socket.parent_path().string());
    EXPECT_EQ(Str(At(socket_volume, {"hostPath", "path"})), socket.parent_path().string()) << directory;
    EXPECT_EQ(Str(At(socket_volume, {"hostPath", "type"})), "DirectoryOrCreate") << directory;

    EXPECT_EQ(Flag(agent, "--node-name"), "$(NODE_NAME)") << directory;
    bool node_name_from_downward_api = false;
    for (const YAML::Node& env : agent["env"]) {
      node_name_from_downward_api |= Str(env["name"]) == "NODE_NAME" &&
                                     Str(At(env, {"valueFrom", "fieldRef", "fieldPath"})) == "spec.nodeName";
    }
    EXPECT_TRUE(node_name_from_downward_api) << directory;
    for (const char* bound : {"requests", "limits"}) {
      EXPECT_TRUE(At(agent, {"resources", bound, "memory"}).IsDefined()) << directory << " " << bound;
      EXPECT_TRUE(At(agent, {"resources", bound, "cpu"}).IsDefined()) << directory << " " << bound;
    }
  }
}

TEST_F(DeployRender, CoordinatorPortsProbesServiceAndDatabaseAgree) {
  const Rendered& base = Render("base");
  ASSERT_EQ(base.error, "");
  YAML::Node deployment = Find(base, "Deployment", "modelcache-coordinator");
  ASSERT_TRUE(deployment.IsDefined());
  EXPECT_EQ(At(deployment, {"spec", "replicas"}).as<int>(), 1);
  EXPECT_EQ(Str(At(deployment, {"spec", "strategy", "type"})), "Recreate");
  YAML::Node pod_spec = PodSpec(deployment);
  YAML::Node coordinator = Container(pod_spec, "coordinator");
  EXPECT_EQ(Str(At(coordinator, {"command", 0})), "/usr/local/bin/modelcache-coordinator");
  fs::path config_path = Flag(coordinator, "--config");
  EXPECT_EQ(Str(At(VolumeAt(pod_spec, coordinator, config_path.parent_path().string()).first, {"configMap", "name"})),
            "modelcache-config");
  YAML::Node config = ConfigFile(base, config_path.filename().string())["coordinator"];
  ASSERT_TRUE(config.IsMap()) << "the ConfigMap has no " << config_path.filename() << " with a coordinator block";

  int grpc_port = PortOf(Str(config["listen"]));
  int metrics_port = PortOf(Str(config["metricsAddress"]));
  EXPECT_EQ(grpc_port, 7070);
  EXPECT_EQ(metrics_port, 9465);
  EXPECT_EQ(ContainerPort(coordinator, "grpc"), grpc_port);
  EXPECT_EQ(ContainerPort(coordinator, "metrics"), metrics_port);
  EXPECT_EQ(Str(At(coordinator, {"livenessProbe", "httpGet", "path"})), "/healthz");
  EXPECT_EQ(ResolvePort(coordinator, At(coordinator, {"livenessProbe", "httpGet", "port"})), metrics_port);
  EXPECT_EQ(Str(At(coordinator, {"readinessProbe", "httpGet", "path"})), "/readyz");
  EXPECT_EQ(ResolvePort(coordinator, At(coordinator, {"readinessProbe", "httpGet", "port"})), metrics_port);
  EXPECT_EQ(Str(At(deployment, {"spec", "template", "metadata", "annotations", "prometheus.io/port"})),
            std::to_string(metrics_port));

  // The database lives on the coordinator's own ReadWriteOnce claim.
  fs::path database = Str(config["database"]);
  auto [data_volume, data_mount] = VolumeAt(pod_spec, coordinator, database.parent_path().string());
  YAML::Node data_claim = Find(base, "PersistentVolumeClaim", Str(At(data_volume, {"persistentVolumeClaim", "claimName"})));
  ASSERT_TRUE(data_claim.IsDefined()) << "no claim mounted at " << database.parent_path();
  EXPECT_THAT(At(data_claim, {"spec", "accessModes"}).as<std::vector<std::string>>(), ElementsAre("ReadWriteOnce"));

  // The Service exposes both ports onto the pod's.
  YAML::Node service = Find(base, "Service", "modelcache-coordinator");
  std::map<int, int> service_ports;
  for (const YAML::Node& port : At(service, {"spec", "ports"})) {
    service_ports[port["port"].as<int>()] = ResolvePort(coordinator, port["targetPort"]);
  }
  EXPECT_EQ(service_ports[grpc_port], grpc_port);
  EXPECT_EQ(service_ports[metrics_port], metrics_port);
  for (const auto& label : At(service, {"spec", "selector"})) {
    EXPECT_EQ(Str(At(deployment, {"spec", "template", "metadata", "labels", label.first.Scalar()})), Str(label.second));
  }
}

TEST_F(DeployRender, AgentReachesTheCoordinatorThroughItsService) {
  const Rendered& base = Render("base");
  ASSERT_EQ(base.error, "");
  std::string address = Str(ConfigFile(base, "config.yaml")["coordinator"]);
  std::string host = address.substr(0, address.rfind(':'));
  YAML::Node service = Find(base, "Service", host);
  ASSERT_TRUE(service.IsDefined()) << "the agent's coordinator address " << address << " names no Service";
  YAML::Node coordinator = Container(PodSpec(Find(base, "Deployment", "modelcache-coordinator")), "coordinator");
  int listen_port = PortOf(Str(At(ConfigFile(base, "coordinator.yaml"), {"coordinator", "listen"})));
  bool reaches = false;
  for (const YAML::Node& port : At(service, {"spec", "ports"})) {
    reaches |= port["port"].as<int>() == PortOf(address) && ResolvePort(coordinator, port["targetPort"]) == listen_port;
  }
  EXPECT_TRUE(reaches) << address << " does not lead to the coordinator's listen port " << listen_port;
}

TEST_F(DeployRender, PodsHaveNoPrivilegeOrApiAccessTheyDoNotNeed) {
  const std::set<std::string> allowed_host_paths = {"/run/modelcache", "/var/lib/modelcache"};
  for (const std::string& directory : AllDirectories()) {
    const Rendered& rendered = Render(directory);
    // Each daemon its own ClusterRole: the coordinator's for the cache claim copies
    // (cache_claims_test checks its rules against the requests the coordinator makes), the
    // agent's for the pods of its node (pods get/list/watch; pod_leases_test checks it). With
    // the webhook's own certificates (overlays/webhook), the coordinator also gets the Secret
    // and the MutatingWebhookConfiguration by name (webhook_certificates_test checks them).
    const bool managed_certificates = directory == "overlays/webhook";
    const size_t webhook_roles = managed_certificates ? 1 : 0;
    EXPECT_EQ(OfKind(rendered, "Role").size(), webhook_roles) << directory;
    EXPECT_EQ(OfKind(rendered, "RoleBinding").size(), webhook_roles) << directory;
    for (const YAML::Node& role : OfKind(rendered, "Role")) {
      EXPECT_EQ(Str(At(role, {"metadata", "namespace"})), kNamespace) << directory;
      for (const YAML::Node& rule : role["rules"]) {
        EXPECT_EQ(rule["resources"].as<std::vector<std::string>>(), std::vector<std::string>{"secrets"}) << directory;
        const auto verbs = rule["verbs"].as<std::vector<std::string>>();
        if (verbs == std::vector<std::string>{"create"}) continue;  // a create cannot be limited by name
        EXPECT_THAT(verbs, ::testing::Not(Contains("create"))) << directory;
        EXPECT_THAT(verbs, ::testing::Not(Contains("list"))) << directory;
        EXPECT_EQ(rule["resourceNames"].as<std::vector<std::string>>(),
                  std::vector<std::string>{Str(At(ConfigFile(rendered, "coordinator.yaml"), {"webhook", "certificates", "secret"}))})
            << directory;
      }
    }
    for (const YAML::Node& binding : OfKind(rendered, "RoleBinding")) {
      EXPECT_EQ(Str(At(binding, {"subjects", 0, "name"})), "modelcache-coordinator") << directory;
      EXPECT_EQ(Str(At(binding, {"subjects", 0, "namespace"})), kNamespace) << directory;
    }
    if (directory != "examples") {
      // Plus the three roles users are bound to by hand (user-roles.yaml), bound to nobody here.
      ASSERT_EQ(OfKind(rendered, "ClusterRole").size(), 5u + webhook_roles) << directory;
      ASSERT_EQ(OfKind(rendered, "ClusterRoleBinding").size(), 2u + webhook_roles) << directory;
      for (const YAML::Node& binding : OfKind(rendered, "ClusterRoleBinding")) {
        const std::string role = Str(At(binding, {"roleRef", "name"}));
        EXPECT_THAT(role, ::testing::AnyOf("modelcache-coordinator", "modelcache-agent", "modelcache-coordinator-webhook"))
            << directory;
        ASSERT_EQ(binding["subjects"].size(), 1u) << directory;
        EXPECT_TRUE(role.starts_with(Str(At(binding, {"subjects", 0, "name"})))) << directory;
        EXPECT_EQ(Str(At(binding, {"subjects", 0, "namespace"})), kNamespace) << directory;
      }
      for (const YAML::Node& cluster_role : OfKind(rendered, "ClusterRole")) {
        const std::string name = Str(At(cluster_role, {"metadata", "name"}));
        const bool agent = name == "modelcache-agent";
        const bool user_role = name == "modelcache-admin" || name == "modelcache-maintainer" || name == "modelcache-viewer";
        if (name == "modelcache-coordinator-webhook") {
          EXPECT_TRUE(managed_certificates) << directory;
          ASSERT_EQ(cluster_role["rules"].size(), 1u) << directory;
          const YAML::Node rule = cluster_role["rules"][0];
          EXPECT_EQ(rule["resources"].as<std::vector<std::string>>(),
                    std::vector<std::string>{"mutatingwebhookconfigurations"});
          EXPECT_EQ(rule["verbs"].as<std::vector<std::string>>(), (std::vector<std::string>{"get", "patch"}));
          EXPECT_EQ(rule["resourceNames"].as<std::vector<std::string>>(),
                    std::vector<std::string>{Str(At(Find(rendered, "MutatingWebhookConfiguration", "modelcache"),
                                                    {"metadata", "name"}))});
          continue;
        }
        EXPECT_TRUE(agent || user_role || name == "modelcache-coordinator") << directory << ": " << name;
        for (const YAML::Node& rule : cluster_role["rules"]) {
          for (const YAML::Node& resource : rule["resources"]) {
            if (agent) {
              EXPECT_EQ(Str(resource), "pods") << directory << ": the agent reads pods, nothing else";
            } else if (user_role) {
              EXPECT_EQ(Str(resource), "models") << directory << ": " << name << " grants modelcache's permissions only";
              EXPECT_EQ(rule["apiGroups"].as<std::vector<std::string>>(), std::vector<std::string>{"modelcache.io"})
                  << directory << ": " << name;
            } else {
              // The cache claim copies, and proving callers (kube_auth_test checks these).
              EXPECT_THAT(Str(resource), ::testing::AnyOf("namespaces", "persistentvolumes", "persistentvolumeclaims",
                                                          "tokenreviews", "subjectaccessreviews"))
                  << directory << ": nothing beyond namespaces, PVs, PVCs and reviews";
              if (Str(resource).ends_with("reviews")) {
                EXPECT_EQ(rule["verbs"].as<std::vector<std::string>>(), std::vector<std::string>{"create"}) << directory;
              }
            }
          }
          if (agent) {
            EXPECT_EQ(rule["verbs"].as<std::vector<std::string>>(), (std::vector<std::string>{"get", "list", "watch"}))
                << directory;
          }
        }
      }
    }
    for (const YAML::Node& account : OfKind(rendered, "ServiceAccount")) {
      EXPECT_EQ(Str(account["automountServiceAccountToken"]), "false") << directory;
    }
    for (const YAML::Node& workload : Workloads(rendered)) {
      std::string workload_name = Str(At(workload, {"metadata", "name"}));
      YAML::Node pod_spec = PodSpec(workload);
      // The daemons talk to the Kubernetes API; nothing else does.
      EXPECT_EQ(Str(pod_spec["automountServiceAccountToken"]),
                workload_name == "modelcache-coordinator" || workload_name == "modelcache-agent" ? "true" : "false")
          << directory << ": " << workload_name;
      EXPECT_EQ(Str(At(pod_spec, {"securityContext", "runAsNonRoot"})), "true") << directory << ": " << workload_name;
      EXPECT_NE(Str(pod_spec["hostNetwork"]), "true") << directory << ": " << workload_name;
      EXPECT_NE(Str(pod_spec["hostPID"]), "true") << directory << ": " << workload_name;
      std::string account = Str(pod_spec["serviceAccountName"]);
      if (!account.empty() && directory != "examples") {
        EXPECT_TRUE(Find(rendered, "ServiceAccount", account).IsDefined()) << directory << ": " << account;
      }
      for (const YAML::Node& volume : pod_spec["volumes"]) {
        if (volume["hostPath"].IsDefined()) {
          EXPECT_TRUE(allowed_host_paths.contains(Str(At(volume, {"hostPath", "path"}))))
              << directory << ": " << workload_name << " mounts host " << At(volume, {"hostPath", "path"});
        }
      }
      for (const YAML::Node& container : Containers(pod_spec)) {
        std::string name = workload_name + "/" + Str(container["name"]);
        const YAML::Node& security = container["securityContext"];
        EXPECT_EQ(Str(security["allowPrivilegeEscalation"]), "false") << directory << ": " << name;
        EXPECT_NE(Str(security["privileged"]), "true") << directory << ": " << name;
        ASSERT_TRUE(At(security, {"capabilities", "drop"}).IsSequence()) << directory << ": " << name;
        EXPECT_THAT(At(security, {"capabilities", "drop"}).as<std::vector<std::string>>(), Contains("ALL"))
            << directory << ": " << name;
        if (!Str(container["image"]).starts_with("modelcache/")) continue;
        EXPECT_EQ(Str(security["readOnlyRootFilesystem"]), "true") << directory << ": " << name;
        // Only the init container that hands the host folders to uid 10001 runs as root, and
        // with CAP_CHOWN alone.
        bool is_root = Str(security["runAsUser"]) == "0";
        std::vector<std::string> added;
        if (At(security, {"capabilities", "add"}).IsSequence()) {
          added = At(security, {"capabilities", "add"}).as<std::vector<std::string>>();
        }
        if (Str(container["name"]) == "prepare-dirs") {
          EXPECT_THAT(added, ElementsAre("CHOWN")) << directory << ": " << name;
        } else {
          EXPECT_FALSE(is_root) << directory << ": " << name;
          EXPECT_THAT(added, ::testing::IsEmpty()) << directory << ": " << name;
        }
      }
    }
  }
}

// The README's install: an inference Deployment in a namespace of its own, which the label
// gives the cache claim; no PersistentVolume by hand.
TEST_F(DeployRender, ExampleInferenceRunsInALabelledNamespaceWithNoHandMadeVolume) {
  const Rendered& examples = Render("examples");
  ASSERT_EQ(examples.error, "");
  YAML::Node deployment = Find(examples, "Deployment", "example-inference");
  const std::string ns = Str(At(deployment, {"metadata", "namespace"}));
  EXPECT_NE(ns, "");
  EXPECT_NE(ns, kNamespace);
  YAML::Node namespace_object = Find(examples, "Namespace", ns);
  ASSERT_TRUE(namespace_object.IsDefined()) << ns;
  EXPECT_EQ(Str(At(namespace_object, {"metadata", "labels", "modelcache.io/cache"})), "enabled");
  EXPECT_THAT(OfKind(examples, "PersistentVolume"), ::testing::IsEmpty());
  EXPECT_THAT(OfKind(examples, "PersistentVolumeClaim"), ::testing::IsEmpty());
  // The coordinator makes the claim there (with the hostpath overlay there is no claim to copy,
  // which it reports).
  const Rendered& base = Render("base");
  YAML::Node kubernetes = ConfigFile(base, "coordinator.yaml")["kubernetes"];
  EXPECT_EQ(Str(kubernetes["enabled"]), "true");
  EXPECT_EQ(Str(kubernetes["sourceNamespace"]), kNamespace);
}

TEST_F(DeployRender, CleanupJobDryRunsModelcachectlCleanupThroughTheNodeAgent) {
  const Rendered& examples = Render("examples");
  ASSERT_EQ(examples.error, "");
  YAML::Node job = Find(examples, "Job", "modelcache-cleanup");
  ASSERT_TRUE(job.IsDefined());
  YAML::Node pod_spec = PodSpec(job);
  EXPECT_EQ(Str(pod_spec["restartPolicy"]), "Never");
  YAML::Node cleanup = At(pod_spec, {"containers", 0});
  EXPECT_EQ(Str(At(cleanup, {"command", 0})), "/usr/local/bin/modelcachectl");
  EXPECT_EQ(Args(cleanup).at(0), "cleanup");
  EXPECT_NE(Flag(cleanup, "--volume"), "");
  EXPECT_TRUE(HasArg(cleanup, "--dry-run"));
  fs::path socket = Flag(cleanup, "--socket");
  EXPECT_EQ(Str(At(VolumeAt(pod_spec, cleanup, socket.parent_path().string()).first, {"hostPath", "path"})),
            socket.parent_path().string());
}

// A matchLabels map as a std::map (empty when absent).
std::map<std::string, std::string> Labels(const YAML::Node& match_labels) {
  std::map<std::string, std::string> labels;
  if (match_labels.IsMap()) {
    for (const auto& label : match_labels) labels[label.first.Scalar()] = Str(label.second);
  }
  return labels;
}

// Whether a label selector selects an object labelled `labels`. Only matchLabels is used in
// deploy/; a selector with matchExpressions fails the test that calls this.
bool Selects(const YAML::Node& selector, const YAML::Node& labels) {
  EXPECT_FALSE(At(selector, {"matchExpressions"}).IsDefined()) << "matchExpressions are not checked here: " << selector;
  for (const auto& [key, value] : Labels(At(selector, {"matchLabels"}))) {
    if (Str(At(labels, {key})) != value) return false;
  }
  return true;
}

// The Prometheus that deploy/ lets scrape: pods labelled app.kubernetes.io/name=prometheus in
// the namespace `monitoring` (deploy/README.md, "Network policy", tells how to change it).
const std::map<std::string, std::string> kPrometheusNamespaceLabels = {{"kubernetes.io/metadata.name", "monitoring"}};
const std::map<std::string, std::string> kPrometheusPodLabels = {{"app.kubernetes.io/name", "prometheus"}};

// The peers each port of `container` accepts, over every NetworkPolicy that selects the pods of
// `workload`, by port number. Every rule must name its peers and ports: a rule without `from`
// admits everyone, one without `ports` every port.
std::map<int, std::vector<YAML::Node>> IngressPeersByPort(const Rendered& rendered, const YAML::Node& workload,
                                                          const YAML::Node& container, const std::string& where) {
  std::map<int, std::vector<YAML::Node>> peers_by_port;
  const YAML::Node pod_labels = At(workload, {"spec", "template", "metadata", "labels"});
  int selecting = 0;
  for (const YAML::Node& policy : OfKind(rendered, "NetworkPolicy")) {
    const std::string name = where + ": NetworkPolicy " + Str(At(policy, {"metadata", "name"}));
    if (!Selects(At(policy, {"spec", "podSelector"}), pod_labels)) continue;
    ++selecting;
    EXPECT_THAT(At(policy, {"spec", "policyTypes"}).as<std::vector<std::string>>(), Contains("Ingress")) << name;
    for (const YAML::Node& rule : At(policy, {"spec", "ingress"})) {
      // One exception: the admission webhook's port (overlays/webhook), which the API server
      // calls, and the API server is no pod a selector could name. Its rule may be open to
      // every peer, on that port alone; the peer list is then one empty peer ("anyone").
      bool webhook_only = rule["ports"].IsSequence() && rule["ports"].size() > 0;
      for (const YAML::Node& port : rule["ports"]) webhook_only = webhook_only && Str(port["port"]) == "webhook";
      YAML::Node anyone(YAML::NodeType::Sequence);
      anyone.push_back(YAML::Node(YAML::NodeType::Map));
      // (yaml-cpp's Node::operator= writes through to the node, so choose at construction.)
      const YAML::Node from = webhook_only && !rule["from"].IsDefined() ? anyone : rule["from"];
      EXPECT_TRUE(from.IsSequence() && from.size() > 0) << name << ": a rule open to every peer";
      EXPECT_TRUE(rule["ports"].IsSequence() && rule["ports"].size() > 0) << name << ": a rule open on every port";
      for (const YAML::Node& port : rule["ports"]) {
        EXPECT_EQ(Str(port["protocol"]), "TCP") << name;
        const int number = ResolvePort(container, port["port"]);
        EXPECT_NE(number, -1) << name << ": port " << port["port"] << " is no port of the pod";
        for (const YAML::Node& peer : from) {
          EXPECT_FALSE(peer["ipBlock"].IsDefined()) << name << ": an address range may be anyone";
          peers_by_port[number].push_back(peer);
        }
      }
    }
  }
  EXPECT_GE(selecting, 1) << where << ": no NetworkPolicy selects the pods of " << At(workload, {"metadata", "name"});
  return peers_by_port;
}

// Only the agents reach the coordinator's gRPC port, and only Prometheus the metrics ports of
// both daemons; every port the pods open is covered, so none is left open by omission.
TEST_F(DeployRender, NetworkPolicyLetsOnlyTheAgentsReachGrpcAndOnlyPrometheusTheMetrics) {
  for (const std::string& directory : AllDirectories()) {
    if (directory == "examples") continue;
    const Rendered& rendered = Render(directory);
    ASSERT_EQ(rendered.error, "") << directory;
    const YAML::Node agent_set = Find(rendered, "DaemonSet", "modelcache-agent");
    const YAML::Node coordinator_deployment = Find(rendered, "Deployment", "modelcache-coordinator");
    ASSERT_TRUE(agent_set.IsDefined() && coordinator_deployment.IsDefined()) << directory;
    const YAML::Node agent_labels = At(agent_set, {"spec", "template", "metadata", "labels"});

    struct Daemon {
      YAML::Node workload;
      std::string container;
    };
    for (const Daemon& daemon : {Daemon{agent_set, "agent"}, Daemon{coordinator_deployment, "coordinator"}}) {
      const std::string where = directory + ": " + daemon.container;
      const YAML::Node container = Container(PodSpec(daemon.workload), daemon.container);
      std::map<int, std::vector<YAML::Node>> peers = IngressPeersByPort(rendered, daemon.workload, container, where);
      std::set<int> open_ports, pod_ports;
      for (const auto& entry : peers) open_ports.insert(entry.first);
      for (const YAML::Node& port : container["ports"]) pod_ports.insert(port["containerPort"].as<int>());
      EXPECT_EQ(open_ports, pod_ports) << where;

      const int metrics_port = ContainerPort(container, "metrics");
      ASSERT_FALSE(peers[metrics_port].empty()) << where << ": nobody may scrape " << metrics_port;
      for (const YAML::Node& peer : peers[metrics_port]) {
        EXPECT_EQ(Labels(At(peer, {"namespaceSelector", "matchLabels"})), kPrometheusNamespaceLabels) << where << ": " << peer;
        EXPECT_EQ(Labels(At(peer, {"podSelector", "matchLabels"})), kPrometheusPodLabels) << where << ": " << peer;
      }
      if (daemon.container != "coordinator") continue;
      const int grpc_port = PortOf(Str(At(ConfigFile(rendered, "coordinator.yaml"), {"coordinator", "listen"})));
      ASSERT_EQ(ContainerPort(container, "grpc"), grpc_port) << where;
      ASSERT_FALSE(peers[grpc_port].empty()) << where << ": the agents cannot reach " << grpc_port;
      for (const YAML::Node& peer : peers[grpc_port]) {
        // No namespaceSelector: pods of this namespace only; and of them, the agents only.
        EXPECT_FALSE(peer["namespaceSelector"].IsDefined()) << where << ": " << peer;
        ASSERT_TRUE(At(peer, {"podSelector", "matchLabels"}).IsMap()) << where << ": " << peer;
        EXPECT_TRUE(Selects(peer["podSelector"], agent_labels)) << where << ": " << peer;
        for (const YAML::Node& workload : Workloads(rendered)) {
          if (Str(At(workload, {"metadata", "name"})) == "modelcache-agent") continue;
          EXPECT_FALSE(Selects(peer["podSelector"], At(workload, {"spec", "template", "metadata", "labels"})))
              << where << ": " << peer << " also admits " << At(workload, {"metadata", "name"});
        }
      }
    }
  }
}

// deploy/README.md's patch for another Prometheus, applied as the README says, changes who may
// scrape both daemons and nothing else.
TEST_F(DeployRender, DocumentedPrometheusPatchChangesWhoMayScrapeBothDaemons) {
  const std::string readme = ReadFile(kDeployDir + "/README.md");
  const size_t section = readme.find("## Network policy");
  ASSERT_NE(section, std::string::npos) << "deploy/README.md has no \"## Network policy\" section";
  const size_t block = readme.find("```yaml\n", section);
  ASSERT_NE(block, std::string::npos);
  const size_t block_end = readme.find("```", block + 8);
  ASSERT_NE(block_end, std::string::npos);
  const std::string snippet = readme.substr(block + 8, block_end - block - 8);
  ASSERT_THAT(snippet, ::testing::HasSubstr("patches:"));

  testing::TempDir overlay;
  const std::string base = fs::relative(kDeployDir + "/base", overlay.Path()).string();
  ASSERT_TRUE(testing::WriteTestFile(overlay.Join("kustomization.yaml"),
                                     "resources:\n  - " + base + "\n" + snippet));
  const Rendered patched = RenderNow(overlay.Path().string());
  ASSERT_EQ(patched.error, "") << snippet;
  const YAML::Node patch = YAML::Load(snippet);
  const YAML::Node value = YAML::Load(Str(At(patch, {"patches", 0, "patch"})))[0]["value"];
  ASSERT_TRUE(value.IsSequence()) << snippet;
  const std::map<std::string, std::string> namespace_labels = Labels(At(value, {0, "namespaceSelector", "matchLabels"}));
  const std::map<std::string, std::string> pod_labels = Labels(At(value, {0, "podSelector", "matchLabels"}));
  ASSERT_NE(namespace_labels, kPrometheusNamespaceLabels) << "the README's example changes nothing";

  const Rendered& base_render = Render("base");
  for (const char* name : {"modelcache-agent", "modelcache-coordinator"}) {
    YAML::Node before = Find(base_render, "NetworkPolicy", name);
    YAML::Node after = Find(patched, "NetworkPolicy", name);
    ASSERT_TRUE(after.IsDefined()) << name;
    EXPECT_EQ(Labels(At(after, {"spec", "ingress", 0, "from", 0, "namespaceSelector", "matchLabels"})), namespace_labels)
        << name;
    EXPECT_EQ(Labels(At(after, {"spec", "ingress", 0, "from", 0, "podSelector", "matchLabels"})), pod_labels) << name;
    EXPECT_EQ(YAML::Dump(At(after, {"spec", "ingress", 0, "ports"})), YAML::Dump(At(before, {"spec", "ingress", 0, "ports"})))
        << name << ": rule 0 is not the metrics rule";
    ASSERT_EQ(At(after, {"spec", "ingress"}).size(), At(before, {"spec", "ingress"}).size()) << name;
    for (size_t rule = 1; rule < At(before, {"spec", "ingress"}).size(); ++rule) {
      EXPECT_EQ(YAML::Dump(At(after, {"spec", "ingress", static_cast<int>(rule)})),
                YAML::Dump(At(before, {"spec", "ingress", static_cast<int>(rule)})))
          << name << " rule " << rule;
    }
  }
}

TEST_F(DeployRender, MonitoringServiceMonitorsSelectServicesWithTheirMetricsPort) {
  const Rendered& rendered = Render("overlays/monitoring");
  ASSERT_EQ(rendered.error, "");
  std::vector<YAML::Node> monitors = OfKind(rendered, "ServiceMonitor");
  ASSERT_EQ(monitors.size(), 2u);
  EXPECT_THAT(OfKind(Render("base"), "ServiceMonitor"), ::testing::IsEmpty()) << "base must not need the CRD";
  std::set<std::string> scraped_workloads;
  for (const YAML::Node& monitor : monitors) {
    std::string port = Str(At(monitor, {"spec", "endpoints", 0, "port"}));
    const YAML::Node& selector = At(monitor, {"spec", "selector", "matchLabels"});
    int matches = 0;
    for (const YAML::Node& service : OfKind(rendered, "Service")) {
      bool selected = true;
      for (const auto& label : selector) {
        selected &= Str(At(service, {"metadata", "labels", label.first.Scalar()})) == Str(label.second);
      }
      if (!selected) continue;
      ++matches;
      bool has_port = false;
      for (const YAML::Node& service_port : At(service, {"spec", "ports"})) has_port |= Str(service_port["name"]) == port;
      EXPECT_TRUE(has_port) << "Service " << At(service, {"metadata", "name"}) << " has no port " << port;
      for (const YAML::Node& workload : Workloads(rendered)) {
        bool backs = true;
        for (const auto& label : At(service, {"spec", "selector"})) {
          backs &= Str(At(workload, {"spec", "template", "metadata", "labels", label.first.Scalar()})) == Str(label.second);
        }
        if (backs) scraped_workloads.insert(Str(At(workload, {"metadata", "name"})));
      }
    }
    EXPECT_EQ(matches, 1) << "ServiceMonitor " << At(monitor, {"metadata", "name"});
  }
  EXPECT_EQ(scraped_workloads, (std::set<std::string>{"modelcache-agent", "modelcache-coordinator"}));
}

// Authentication is on with nothing to hand-make (issue #15): the coordinator's config turns
// the Kubernetes reviews on, for the audience the agents' projected token carries and for the
// agents' ServiceAccount; the agent's config reads that token from where the volume mounts it;
// the roles of each permission are shipped, each a superset of the one below.
TEST_F(DeployRender, AuthenticationIsOnByDefaultWithTheAgentsProjectedToken) {
  for (const std::string& directory : AllDirectories()) {
    if (directory == "examples") continue;
    const Rendered& rendered = Render(directory);
    YAML::Node auth = At(ConfigFile(rendered, "coordinator.yaml"), {"coordinator", "kubernetesAuth"});
    ASSERT_TRUE(auth.IsMap()) << directory << ": coordinator.kubernetesAuth";
    EXPECT_EQ(Str(auth["enabled"]), "true") << directory;
    const std::string audience = Str(auth["audience"]);
    EXPECT_EQ(Str(auth["agentServiceAccount"]), kNamespace + "/modelcache-agent") << directory;
    YAML::Node agent = Find(rendered, "DaemonSet", "modelcache-agent");
    YAML::Node pod_spec = PodSpec(agent);
    EXPECT_EQ(Str(pod_spec["serviceAccountName"]), "modelcache-agent") << directory;
    std::string token_volume;
    std::string token_path;
    for (const YAML::Node& volume : pod_spec["volumes"]) {
      for (const YAML::Node& source : At(volume, {"projected", "sources"})) {
        if (Str(At(source, {"serviceAccountToken", "audience"})) == audience) {
          token_volume = Str(volume["name"]);
          token_path = Str(At(source, {"serviceAccountToken", "path"}));
          EXPECT_LE(At(source, {"serviceAccountToken", "expirationSeconds"}).as<int>(), 86400) << directory;
        }
      }
    }
    ASSERT_NE(token_volume, "") << directory << ": no projected token of audience " << audience;
    std::string mounted;
    for (const YAML::Node& mount : Container(pod_spec, "agent")["volumeMounts"]) {
      if (Str(mount["name"]) == token_volume) mounted = Str(mount["mountPath"]) + "/" + token_path;
    }
    EXPECT_EQ(Str(ConfigFile(rendered, "config.yaml")["coordinatorTokenFile"]), mounted) << directory;
    std::vector<std::set<std::string>> verbs;
    for (const char* role : {"modelcache-viewer", "modelcache-maintainer", "modelcache-admin"}) {
      YAML::Node cluster_role = Find(rendered, "ClusterRole", role);
      ASSERT_TRUE(cluster_role.IsDefined()) << directory << ": " << role;
      std::set<std::string> granted;
      for (const YAML::Node& rule : cluster_role["rules"]) {
        for (const YAML::Node& verb : rule["verbs"]) granted.insert(Str(verb));
      }
      verbs.push_back(granted);
    }
    EXPECT_EQ(verbs[0], (std::set<std::string>{"get"})) << directory;
    EXPECT_EQ(verbs[1], (std::set<std::string>{"get", "update", "lease"})) << directory;
    EXPECT_EQ(verbs[2], (std::set<std::string>{"get", "update", "lease", "delete"})) << directory;
  }
}

}  // namespace
}  // namespace modelcache

namespace modelcache {
namespace {

// overlays/webhook and overlays/webhook-cert-manager: the MutatingWebhookConfiguration reaches
// the coordinator's /mutate through its Service on the port the config listens on, for labelled
// pods only; the certificate is the coordinator's own (managed: the Secret and the configuration
// by name, nothing mounted) or cert-manager's (its Certificate for the Service's name into the
// Secret the coordinator mounts at the files the config names, and the CA injected).
TEST_F(DeployRender, WebhookOverlayWiresTheMutatingWebhookToTheCoordinator) {
  for (const std::string directory : {"overlays/webhook", "overlays/webhook-cert-manager"}) {
    SCOPED_TRACE(directory);
    const Rendered& rendered = Render(directory);
    ASSERT_EQ(rendered.error, "");
    YAML::Node config = ConfigFile(rendered, "coordinator.yaml")["webhook"];
    ASSERT_TRUE(config.IsMap());
    const int port = PortOf(Str(config["listen"]));
    YAML::Node deployment = Find(rendered, "Deployment", "modelcache-coordinator");
    YAML::Node pod_spec = PodSpec(deployment);
    YAML::Node coordinator = Container(pod_spec, "coordinator");
    EXPECT_EQ(ContainerPort(coordinator, "webhook"), port);
    YAML::Node configuration = Find(rendered, "MutatingWebhookConfiguration", "modelcache");
    ASSERT_TRUE(configuration.IsDefined());
    const std::string inject_ca_from = Str(At(configuration, {"metadata", "annotations", "cert-manager.io/inject-ca-from"}));
    if (directory == "overlays/webhook") {
      // The coordinator's own certificates: no files, the Secret and the configuration by name.
      EXPECT_EQ(Str(At(config, {"certificates", "managed"})), "true");
      EXPECT_FALSE(config["tlsCert"].IsDefined());
      EXPECT_EQ(Str(At(config, {"certificates", "mutatingWebhookConfiguration"})), "modelcache");
      EXPECT_EQ(Str(At(config, {"certificates", "service"})), "modelcache-coordinator");
      EXPECT_EQ(Str(At(config, {"certificates", "namespace"})), kNamespace);
      EXPECT_EQ(Str(At(config, {"certificates", "secret"})), "modelcache-webhook-tls");
      EXPECT_EQ(inject_ca_from, "");
      EXPECT_FALSE(Volume(pod_spec, "webhook-tls").IsDefined()) << "nothing to mount";
    } else {
      // cert-manager's: its Certificate into the Secret the coordinator mounts, for the Service's
      // names, and its CA injected from that Certificate.
      EXPECT_FALSE(config["certificates"].IsDefined());
      for (const char* key : {"tlsCert", "tlsKey"}) {
        fs::path file = Str(config[key]);
        EXPECT_EQ(Str(At(VolumeAt(pod_spec, coordinator, file.parent_path().string()).first, {"secret", "secretName"})),
                  "modelcache-webhook-tls") << key;
      }
      YAML::Node certificate = Find(rendered, "Certificate", "modelcache-webhook");
      ASSERT_TRUE(certificate.IsDefined());
      EXPECT_EQ(inject_ca_from, kNamespace + "/modelcache-webhook");
      EXPECT_EQ(Str(At(certificate, {"metadata", "namespace"})), kNamespace);
      EXPECT_EQ(Str(At(certificate, {"spec", "secretName"})), "modelcache-webhook-tls");
      EXPECT_THAT(At(certificate, {"spec", "dnsNames"}).as<std::vector<std::string>>(),
                  Contains("modelcache-coordinator.modelcache.svc"));
      YAML::Node issuer = Find(rendered, "Issuer", Str(At(certificate, {"spec", "issuerRef", "name"})));
      EXPECT_TRUE(issuer.IsDefined());
      EXPECT_THAT(OfKind(rendered, "Role"), ::testing::IsEmpty()) << "cert-manager needs no RBAC of the coordinator";
      EXPECT_FALSE(Find(rendered, "ClusterRole", "modelcache-coordinator-webhook").IsDefined());
    }
    EXPECT_EQ(Str(config["image"]), Str(coordinator["image"]));

    YAML::Node hook = At(configuration, {"webhooks", 0});
    EXPECT_EQ(Str(At(hook, {"clientConfig", "service", "name"})), "modelcache-coordinator");
    EXPECT_EQ(Str(At(hook, {"clientConfig", "service", "namespace"})), "modelcache");
    EXPECT_EQ(Str(At(hook, {"clientConfig", "service", "path"})), "/mutate");
    EXPECT_EQ(Str(At(hook, {"objectSelector", "matchLabels", "modelcache.io/inject"})), "true");
    EXPECT_EQ(Str(hook["failurePolicy"]), "Fail");
    EXPECT_EQ(Str(hook["sideEffects"]), "None");
    EXPECT_EQ(Str(hook["reinvocationPolicy"]), "Never");
    EXPECT_LE(hook["timeoutSeconds"].as<int>(), 10);
    YAML::Node service = Find(rendered, "Service", "modelcache-coordinator");
    bool served = false;
    for (const YAML::Node& service_port : At(service, {"spec", "ports"})) {
      if (service_port["port"].as<int>() == At(hook, {"clientConfig", "service", "port"}).as<int>()) {
        served = ResolvePort(coordinator, service_port["targetPort"]) == port;
      }
    }
    EXPECT_TRUE(served) << "the Service does not lead the webhook's port to " << port;
  }
}

// Maps, sequences and scalars (as strings: the webhook reads names, env and annotations only).
nlohmann::json YamlToJson(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& entry : node) object[entry.first.Scalar()] = YamlToJson(entry.second);
    return object;
  }
  if (node.IsSequence()) {
    nlohmann::json array = nlohmann::json::array();
    for (const YAML::Node& item : node) array.push_back(YamlToJson(item));
    return array;
  }
  return node.IsScalar() ? nlohmann::json(node.Scalar()) : nlohmann::json();
}

// The example's pod, as its ReplicaSet makes it, is one the webhook admits and injects with
// overlays/webhook's settings, and those settings agree with the agents: the init container
// reaches the node agent's socket through its host folder, the cache claim is mounted
// read-only, the fetch script maps the agents' cacheRoot, and the server reads $MODEL_PATH.
TEST_F(DeployRender, ExampleInferenceIsInjectedToFetchThroughTheNodeAgentAndReadTheCacheReadOnly) {
  const Rendered& examples = Render("examples");
  ASSERT_EQ(examples.error, "");
  YAML::Node deployment = Find(examples, "Deployment", "example-inference");
  ASSERT_TRUE(deployment.IsDefined());
  const Rendered& overlay = Render("overlays/webhook");
  YAML::Node config = ConfigFile(overlay, "coordinator.yaml")["webhook"];
  ASSERT_TRUE(config.IsMap());
  YAML::Node agent = Container(PodSpec(Find(overlay, "DaemonSet", "modelcache-agent")), "agent");
  const fs::path socket = Flag(agent, "--socket");
  EXPECT_EQ(Str(config["socketHostPath"]), socket.parent_path().string());
  EXPECT_EQ(Str(config["agentCacheRoot"]), Flag(agent, "--cache-root"));

  nlohmann::json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
  pod["metadata"] = YamlToJson(At(deployment, {"spec", "template", "metadata"}));
  pod["metadata"]["name"] = "example-inference-1";
  pod["metadata"]["namespace"] = Str(At(deployment, {"metadata", "namespace"}));
  pod["spec"] = YamlToJson(At(deployment, {"spec", "template", "spec"}));
  EXPECT_EQ(pod["metadata"]["labels"].value("modelcache.io/inject", ""), "true");
  webhook::InjectionSettings settings{.image = Str(config["image"]),
                                      .socket_host_path = Str(config["socketHostPath"]),
                                      .claim_name = kCacheClaimPrefix,
                                      .agent_cache_root = Str(config["agentCacheRoot"])};
  auto injected = webhook::InjectedPod(pod, settings);
  ASSERT_TRUE(injected.ok()) << injected.status();
  EXPECT_EQ((*injected)["spec"]["initContainers"][0]["name"], webhook::kFetchContainer);
  EXPECT_EQ((*injected)["spec"]["initContainers"][0]["image"], Str(Container(PodSpec(Find(overlay, "Deployment",
                                                                                         "modelcache-coordinator")),
                                                                               "coordinator")["image"]));
  int host_paths = 0;
  int claims = 0;
  for (const auto& volume : (*injected)["spec"]["volumes"]) {
    if (volume.contains("hostPath")) {
      ++host_paths;
      EXPECT_EQ(volume["hostPath"].value("path", ""), socket.parent_path().string());
    }
    if (volume.contains("persistentVolumeClaim")) {
      ++claims;
      EXPECT_EQ(volume["persistentVolumeClaim"].value("claimName", ""), kCacheClaimPrefix);
      EXPECT_TRUE(volume["persistentVolumeClaim"].value("readOnly", false));
    }
  }
  EXPECT_EQ(host_paths, 1) << "the agent's socket folder, nothing else of the host";
  EXPECT_EQ(claims, 1);
  const nlohmann::json& server = (*injected)["spec"]["containers"][0];
  std::string model_path;
  for (const auto& variable : server["env"]) {
    if (variable["name"] == "MODEL_PATH") model_path = variable["value"];
  }
  EXPECT_EQ(model_path, "/models/tiny-model");
  for (const auto& mount : server["volumeMounts"]) {
    EXPECT_TRUE(mount.value("readOnly", false)) << mount.dump() << ": the server reads the model, never writes it";
  }
}

}  // namespace
}  // namespace modelcache
