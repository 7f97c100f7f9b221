#include "tests/testing/agent_process.h"

#include "absl/strings/str_cat.h"
#include "tests/testing/ports.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

std::string AgentConfigYaml(const AgentProcessOptions& options) {
  std::string yaml = absl::StrCat("cacheRoot: ", options.cache_root.string(),
                                  "\nsocket: ", options.socket.string(), "\nmetricsAddress: \"",
                                  options.metrics_address, "\"\nnodeName: ", options.node_name,
                                  "\n");
  if (!options.coordinator.empty()) absl::StrAppend(&yaml, "coordinator: ", options.coordinator, "\n");
  if (!options.coordinator_token_file.empty()) {
    absl::StrAppend(&yaml, "coordinatorTokenFile: ", options.coordinator_token_file.string(), "\n");
  }
  if (!options.network_allow.empty() || !options.network_resolve.empty()) {
    absl::StrAppend(&yaml, "network:\n");
    for (const auto& [key, items] : {std::pair{"allow", &options.network_allow},
                                     std::pair{"resolve", &options.network_resolve}}) {
      if (items->empty()) continue;
      absl::StrAppend(&yaml, "  ", key, ":\n");
      for (const std::string& item : *items) absl::StrAppend(&yaml, "  - \"", item, "\"\n");
    }
  }
  if (!options.file_sources.empty()) {
    absl::StrAppend(&yaml, "fileSources:\n");
    for (const std::filesystem::path& folder : options.file_sources) {
      absl::StrAppend(&yaml, "- ", folder.string(), "\n");
    }
  }
  absl::StrAppend(&yaml, "log: {level: ", options.log_level, "}\n", options.extra_yaml);
  return yaml;
}

absl::StatusOr<std::unique_ptr<AgentProcess>> AgentProcess::Start(AgentProcessOptions options) {
  if (options.directory.empty() || options.cache_root.empty() || options.socket.empty()) {
    return absl::InvalidArgumentError("AgentProcessOptions: directory, cache_root and socket are required");
  }
  std::unique_ptr<AgentProcess> agent(new AgentProcess(std::move(options)));
  absl::Status launched = agent->Restart();
  if (!launched.ok()) return launched;
  return agent;
}

absl::Status AgentProcess::Restart() {
  if (!WriteTestFile(ConfigPath(), AgentConfigYaml(options_))) {
    return absl::InternalError(absl::StrCat("cannot write ", ConfigPath().string()));
  }
  return Launch({options_.binary, "--config", ConfigPath().string()}, options_.environment,
                [this] { return UnixSocketAccepts(options_.socket); }, options_.start_timeout,
                ConfigPath());
}

absl::Status AgentProcess::Restart(AgentProcessOptions options) {
  options.directory = options_.directory;
  options.node_name = options_.node_name;
  options_ = std::move(options);
  return Restart();
}

std::filesystem::path AgentProcess::ConfigPath() const {
  return options_.directory / (options_.node_name + ".yaml");
}

}  // namespace modelcache::testing
