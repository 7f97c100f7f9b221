#include "agent/ensure_source.h"

#include "common/status_format.h"
#include "common/uri.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// "asked for X" or "asked without a source", for the refusals.
std::string Asked(const v1::EnsureRequest& request) {
  return request.source().empty() ? std::string("asked without a source")
                                  : fmt::format("asked for {}", request.source());
}

}  // namespace

absl::StatusOr<std::string> ResolveEnsureSource(const v1::EnsureRequest& request,
                                                const RegistryLookup& registry) {
  const std::string model = fmt::format("model {}@{}", request.name(), request.version());
  switch (registry.state) {
    case RegistryLookup::State::kNoCoordinator:
      if (request.source().empty()) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: EnsureRequest.source is empty (this agent has no coordinator, so no registry "
            "names the source: give --source)",
            model));
      }
      return request.source();
    case RegistryLookup::State::kNotReceived:
      return absl::FailedPreconditionError(fmt::format(
          "{}: {}, but this agent has not received the model registry from its coordinator "
          "(unreachable since the agent started, or older than the agent), so it fills from no "
          "source: download the model yourself",
          model, Asked(request)));
    case RegistryLookup::State::kUnregistered:
      return absl::FailedPreconditionError(fmt::format(
          "{}: {}, but the version has no registered source in the coordinator's registry "
          "(an admin or maintainer registers it with: modelcachectl models set-source {}@{} URI)",
          model, Asked(request), request.name(), request.version()));
    case RegistryLookup::State::kRegistered:
      break;
  }
  if (request.source().empty()) return registry.source;
  absl::StatusOr<std::string> asked = NormalizeSourceUri(request.source());
  if (!asked.ok()) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", model, asked.status().message()));
  }
  if (*asked != registry.source) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: source {} is not the registered source {} (ask without a source to get the "
        "registered one; an admin or maintainer changes it with: modelcachectl models "
        "set-source {}@{} URI)",
        model, request.source(), registry.source, request.name(), request.version()));
  }
  return registry.source;
}

}  // namespace modelcache
