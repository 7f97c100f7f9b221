#include "tests/testing/coordinator_process.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/testing/ports.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

std::string CoordinatorConfigYaml(const CoordinatorProcessOptions& options) {
  std::filesystem::path database =
      options.database.empty() ? options.directory / "c.db" : options.database;
  std::string yaml = absl::StrCat("modelsCacheStorage: ", options.storage_yaml,
                                  "\ncoordinator:\n  listen: 127.0.0.1:", options.port,
                                  "\n  database: ", database.string(), "\n");
  if (!options.tokens_file.empty()) {
    absl::StrAppend(&yaml, "  tokensFile: ", options.tokens_file.string(), "\n");
  }
  if (!options.default_caching.empty()) {
    absl::StrAppend(&yaml, "  defaultCaching: ", options.default_caching, "\n");
  }
  if (!options.coordinator_extra_yaml.empty()) {
    std::string lines = options.coordinator_extra_yaml;
    if (lines.back() != '\n') lines += '\n';
    lines.pop_back();
    absl::StrAppend(&yaml, "  ", absl::StrReplaceAll(lines, {{"\n", "\n  "}}), "\n");
  }
  absl::StrAppend(&yaml, options.extra_yaml);
  return yaml;
}

absl::StatusOr<std::unique_ptr<CoordinatorProcess>> CoordinatorProcess::Start(
    CoordinatorProcessOptions options) {
  if (options.directory.empty()) {
    return absl::InvalidArgumentError("CoordinatorProcessOptions: directory is required");
  }
  if (options.port == 0) options.port = FreeTcpPort();
  std::unique_ptr<CoordinatorProcess> coordinator(new CoordinatorProcess(std::move(options)));
  absl::Status launched = coordinator->Restart();
  if (!launched.ok()) return launched;
  return coordinator;
}

absl::Status CoordinatorProcess::Restart() {
  if (!WriteTestFile(ConfigPath(), CoordinatorConfigYaml(options_))) {
    return absl::InternalError(absl::StrCat("cannot write ", ConfigPath().string()));
  }
  return Launch({options_.binary, "--config", ConfigPath().string()}, {},
                [this] { return TcpPortAccepts(options_.port); }, options_.start_timeout,
                ConfigPath());
}

std::string CoordinatorProcess::Address() const {
  return absl::StrCat("127.0.0.1:", options_.port);
}

}  // namespace modelcache::testing
