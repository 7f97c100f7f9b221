#include "coordinator/policy/source_rules.h"

#include "absl/strings/ascii.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

absl::Status CheckSourcePrefix(std::string_view name, std::string_view version,
                               std::string_view source, std::string_view prefix) {
  if (prefix.empty() || source == prefix) return absl::OkStatus();
  if (source.size() > prefix.size() && source.substr(0, prefix.size()) == prefix &&
      (prefix.back() == '/' || source[prefix.size()] == '/')) {
    // An http(s) origin may decode "%2F" or "%5C" into a separator and then resolve ".." across
    // it ("llama/x%2F..%2F..%2Fevil/" is "/evil/" to nginx), leaving the prefix. The query
    // does not take part in the path (a presigned URL's credential holds "%2F").
    if (!prefix.starts_with("http://") && !prefix.starts_with("https://")) {
      return absl::OkStatus();
    }
    std::string_view rest = source.substr(prefix.size());
    rest = rest.substr(0, rest.find_first_of("?#"));
    std::string upper(rest);
    for (char& c : upper) c = absl::ascii_toupper(static_cast<unsigned char>(c));
    if (upper.find("%2F") == std::string::npos && upper.find("%5C") == std::string::npos &&
        upper.find('\\') == std::string::npos) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(fmt::format(
        "model {}@{}: source {} holds an escaped '/' or '\\' (%2F, %5C) or a '\\' in its path "
        "after the model's source prefix {}, which an origin may read as a path outside the "
        "prefix: write the path with plain '/'",
        name, version, source, prefix));
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
