#include "coordinator/policy/source_rules.h"

#include "spdlog/fmt/fmt.h"

namespace modelcache {

absl::Status CheckSourcePrefix(std::string_view name, std::string_view version,
                               std::string_view source, std::string_view prefix) {
  if (prefix.empty() || source == prefix) return absl::OkStatus();
  if (source.size() > prefix.size() && source.substr(0, prefix.size()) == prefix &&
      (prefix.back() == '/' || source[prefix.size()] == '/')) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(fmt::format(
      "model {}@{}: source {} is outside the model's source prefix {} (an admin or maintainer "
      "changes it with: modelcachectl models set-source-prefix {} PREFIX)",
      name, version, source, prefix, name));
}

absl::StatusOr<bool> DecideSourceChange(std::string_view name, std::string_view version,
                                        std::string_view source, const SourceEntry& entry,
                                        SourceChange change) {
  if (entry.source && *entry.source == source) return false;
  if (entry.source && change == SourceChange::kRegisterOnly) {
    return absl::FailedPreconditionError(fmt::format(
        "model {}@{}: source {} is not the registered source {} (an admin or maintainer "
        "changes it with: modelcachectl models set-source {}@{} URI)",
        name, version, source, *entry.source, name, version));
  }
  if (absl::Status inside = CheckSourcePrefix(name, version, source, entry.prefix); !inside.ok()) {
    return inside;
  }
  return true;
}

}  // namespace modelcache
