#include "agent/hit_decision.h"

#include "common/uri.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

HitDecision DecideHit(std::string_view name, std::string_view version,
                      const absl::StatusOr<v1::Manifest>& on_disk, std::string_view asked_source) {
  if (absl::IsNotFound(on_disk.status())) return {HitAction::kFillAgain, absl::OkStatus()};
  if (!on_disk.ok()) {
    return {HitAction::kRefuse,
            absl::Status(on_disk.status().code(),
                         fmt::format("model {}@{}: its published folder cannot be read: {}", name,
                                     version, std::string(on_disk.status().message())))};
  }
  if (on_disk->name() != name || on_disk->version() != version) {
    return {HitAction::kRefuse,
            absl::DataLossError(fmt::format(
                "model {}@{}: the manifest in its published folder is for {}@{}", name, version,
                on_disk->name(), on_disk->version()))};
  }
  if (!SameSource(on_disk->source(), asked_source)) {
    return {HitAction::kRefuse, OtherSourceError(name, version, SourceConflict::kPublished,
                                                 on_disk->source(), asked_source)};
  }
  return {HitAction::kServe, absl::OkStatus()};
}

absl::Status OtherSourceError(std::string_view name, std::string_view version,
                              SourceConflict where, std::string_view their_source,
                              std::string_view asked_source, std::string_view node) {
  std::string how;
  switch (where) {
    case SourceConflict::kPublished:
      how = "is cached on this volume from";
      break;
    case SourceConflict::kFilling:
      how = "is being filled by this agent from";
      break;
    case SourceConflict::kFillingOnAnotherAgent:
      how = fmt::format("is being filled by the agent on {} of this volume from",
                        node.empty() ? std::string_view("another node") : node);
      break;
  }
  return absl::FailedPreconditionError(fmt::format(
      "model {}@{} {} {}, not from {} as asked: a cached model is served only to callers of "
      "the source it was filled from; ask for that source, or download the model yourself "
      "(modelcachectl fetch --fallback)",
      name, version, how, their_source, asked_source));
}

}  // namespace modelcache
