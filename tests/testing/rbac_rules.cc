#include "tests/testing/rbac_rules.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"
#include "tests/testing/kube_api_server.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {
namespace {

std::vector<std::string> Strings(const YAML::Node& node) {
  std::vector<std::string> out;
  if (node.IsDefined() && node.IsSequence()) {
    for (const YAML::Node& item : node) out.push_back(item.as<std::string>());
  }
  return out;
}

bool Has(const std::vector<std::string>& values, std::string_view value) {
  return std::find(values.begin(), values.end(), "*") != values.end() ||
         std::find(values.begin(), values.end(), value) != values.end();
}

std::string Field(const nlohmann::json& object, const char* key) {
  return object.contains(key) && object[key].is_string() ? object[key].get<std::string>() : "";
}

// Every object `kubectl kustomize <directory>` renders.
absl::StatusOr<std::vector<YAML::Node>> RenderObjects(const std::string& directory) {
  if (!KubectlInstalled()) return absl::FailedPreconditionError("kubectl is not installed: cannot render deploy/");
  TempDir output;
  SubprocessOptions options{.argv = {"kubectl", "kustomize", directory},
                            .stdout_path = output.Join("rendered.yaml"),
                            .stderr_path = output.Join("stderr.txt")};
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  absl::StatusOr<ExitStatus> exit = (*process)->WaitExit(std::chrono::seconds(60));
  if (!exit.ok() || !exit->Success()) {
    return absl::InvalidArgumentError(fmt::format("kubectl kustomize {}: {}: {}", directory,
                                                  exit.ok() ? exit->ToString() : std::string(exit.status().message()),
                                                  ReadTestFile(options.stderr_path)));
  }
  std::vector<YAML::Node> objects;
  try {
    for (const YAML::Node& object : YAML::LoadAll(ReadTestFile(options.stdout_path))) {
      if (object.IsMap()) objects.push_back(object);
    }
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(fmt::format("kubectl kustomize {}: output does not parse: {}", directory, error.what()));
  }
  return objects;
}

std::vector<RbacRule> RulesOf(const YAML::Node& role, const std::string& namespace_name = "") {
  std::vector<RbacRule> rules;
  const std::string name = role["metadata"]["name"].as<std::string>("");
  for (const YAML::Node& rule : role["rules"]) {
    rules.push_back({.role = name,
                     .namespace_name = namespace_name,
                     .api_groups = Strings(rule["apiGroups"]),
                     .resources = Strings(rule["resources"]),
                     .verbs = Strings(rule["verbs"]),
                     .resource_names = Strings(rule["resourceNames"]),
                     .non_resource_urls = Strings(rule["nonResourceURLs"])});
  }
  return rules;
}

}  // namespace

absl::StatusOr<std::vector<RbacRule>> RenderedClusterRules(const std::string& directory,
                                                           std::string_view namespace_name, std::string_view account) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> objects, RenderObjects(directory));
  auto names_account = [&](const YAML::Node& binding) {
    for (const YAML::Node& subject : binding["subjects"]) {
      if (subject["kind"].as<std::string>("") == "ServiceAccount" && subject["name"].as<std::string>("") == account &&
          subject["namespace"].as<std::string>("") == namespace_name) {
        return true;
      }
    }
    return false;
  };
  std::set<std::string> roles;
  for (const YAML::Node& object : objects) {
    const std::string kind = object["kind"].as<std::string>("");
    if (kind == "RoleBinding" && names_account(object)) {
      return absl::InvalidArgumentError(fmt::format("{}: RoleBinding \"{}\" binds {}/{}: namespaced rules are not modelled",
                                                    directory, object["metadata"]["name"].as<std::string>(""),
                                                    namespace_name, account));
    }
    if (kind == "ClusterRoleBinding" && names_account(object) &&
        object["roleRef"]["kind"].as<std::string>("") == "ClusterRole") {
      roles.insert(object["roleRef"]["name"].as<std::string>(""));
    }
  }
  std::vector<RbacRule> rules;
  for (const YAML::Node& object : objects) {
    if (object["kind"].as<std::string>("") != "ClusterRole") continue;
    const std::string name = object["metadata"]["name"].as<std::string>("");
    if (!roles.contains(name)) continue;
    for (RbacRule& rule : RulesOf(object)) rules.push_back(std::move(rule));
  }
  return rules;
}

absl::StatusOr<std::vector<RbacRule>> RenderedRules(const std::string& directory, std::string_view namespace_name,
                                                    std::string_view account) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> objects, RenderObjects(directory));
  auto names_account = [&](const YAML::Node& binding) {
    for (const YAML::Node& subject : binding["subjects"]) {
      if (subject["kind"].as<std::string>("") == "ServiceAccount" && subject["name"].as<std::string>("") == account &&
          subject["namespace"].as<std::string>("") == namespace_name) {
        return true;
      }
    }
    return false;
  };
  auto find = [&](const std::string& kind, const std::string& name, const std::string& role_namespace) -> const YAML::Node* {
    for (const YAML::Node& object : objects) {
      if (object["kind"].as<std::string>("") == kind && object["metadata"]["name"].as<std::string>("") == name &&
          (kind == "ClusterRole" || object["metadata"]["namespace"].as<std::string>("") == role_namespace)) {
        return &object;
      }
    }
    return nullptr;
  };
  std::vector<RbacRule> rules;
  for (const YAML::Node& binding : objects) {
    const std::string kind = binding["kind"].as<std::string>("");
    if ((kind != "ClusterRoleBinding" && kind != "RoleBinding") || !names_account(binding)) continue;
    const std::string binding_namespace = kind == "RoleBinding" ? binding["metadata"]["namespace"].as<std::string>("") : "";
    const std::string role_kind = binding["roleRef"]["kind"].as<std::string>("");
    const std::string role_name = binding["roleRef"]["name"].as<std::string>("");
    const YAML::Node* role = find(role_kind, role_name, binding_namespace);
    if (role == nullptr) {
      return absl::InvalidArgumentError(fmt::format("{}: {} \"{}\" binds {} \"{}\", which it does not render", directory,
                                                    kind, binding["metadata"]["name"].as<std::string>(""), role_kind,
                                                    role_name));
    }
    for (RbacRule& rule : RulesOf(*role, binding_namespace)) rules.push_back(std::move(rule));
  }
  return rules;
}

absl::StatusOr<std::vector<RbacRule>> RenderedClusterRoleRules(const std::string& directory, std::string_view role) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> objects, RenderObjects(directory));
  for (const YAML::Node& object : objects) {
    if (object["kind"].as<std::string>("") == "ClusterRole" && object["metadata"]["name"].as<std::string>("") == role) {
      return RulesOf(object);
    }
  }
  return absl::NotFoundError(fmt::format("{}: renders no ClusterRole \"{}\"", directory, role));
}

nlohmann::json SubjectAccessAllowRules(const std::vector<RbacRule>& rules, std::string_view subject) {
  nlohmann::json allow = nlohmann::json::array();
  for (const RbacRule& rule : rules) {
    for (const std::string& group : rule.api_groups) {
      for (const std::string& resource : rule.resources) {
        for (const std::string& verb : rule.verbs) {
          allow.push_back({{"user", std::string(subject)}, {"group", group}, {"resource", resource}, {"verb", verb}});
        }
      }
    }
  }
  return allow;
}

std::vector<std::string> GrantsOf(const std::vector<RbacRule>& rules) {
  std::vector<std::string> grants;
  for (const RbacRule& rule : rules) {
    for (const std::string& group : rule.api_groups) {
      for (const std::string& resource : rule.resources) {
        for (const std::string& verb : rule.verbs) grants.push_back(fmt::format("{}/{}/{}", group, resource, verb));
      }
    }
    for (const std::string& url : rule.non_resource_urls) {
      for (const std::string& verb : rule.verbs) grants.push_back(fmt::format("url:{}/{}", url, verb));
    }
  }
  return grants;
}

std::string GrantFor(const nlohmann::json& request) {
  std::string resource = Field(request, "resource");
  if (!Field(request, "subresource").empty()) resource += "/" + Field(request, "subresource");
  return fmt::format("{}/{}/{}", Field(request, "apiGroup"), resource, Field(request, "verb"));
}

bool Allowed(const std::vector<RbacRule>& rules, const nlohmann::json& request) {
  std::string resource = Field(request, "resource");
  if (resource.empty()) return false;  // raw requests: the coordinator makes none
  if (!Field(request, "subresource").empty()) resource += "/" + Field(request, "subresource");
  for (const RbacRule& rule : rules) {
    if (!Has(rule.api_groups, Field(request, "apiGroup")) || !Has(rule.resources, resource) ||
        !Has(rule.verbs, Field(request, "verb"))) {
      continue;
    }
    // As the API server authorizes: a create has no name yet (it is in the body, not the URL),
    // so a rule limited by resourceNames never allows one.
    if (!rule.resource_names.empty() &&
        (Field(request, "verb") == "create" || !Has(rule.resource_names, Field(request, "name")))) {
      continue;
    }
    if (!rule.namespace_name.empty() && rule.namespace_name != Field(request, "namespace")) continue;
    return true;
  }
  return false;
}

absl::StatusOr<std::vector<nlohmann::json>> ReadRequestLog(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(fmt::format("{}: cannot open", path));
  std::vector<nlohmann::json> lines;
  int number = 0;
  for (std::string line; std::getline(file, line);) {
    ++number;
    if (line.empty()) continue;
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    if (parsed.is_discarded()) return absl::InvalidArgumentError(fmt::format("{}:{}: not JSON: {}", path, number, line));
    lines.push_back(std::move(parsed));
  }
  return lines;
}

void ExpectRequestsAllowed(const absl::StatusOr<std::vector<RbacRule>>& rules, const std::string& path,
                           std::string_view whose) {
  if (!std::filesystem::exists(path)) return;
  ASSERT_TRUE(rules.ok()) << rules.status();
  auto requests = ReadRequestLog(path);
  ASSERT_TRUE(requests.ok()) << requests.status();
  for (const nlohmann::json& request : *requests) {
    EXPECT_TRUE(Allowed(*rules, request)) << whose << " does not allow the request " << request.dump();
  }
}

}  // namespace modelcache::testing
