#pragma once
// Whether a model on the volume may answer an Ensure. Two promises of the cache live here as
// pure functions (the caller does the I/O):
//   - READY only for a model that is there: the index is a memory of the volume, and the
//     volume is shared (another agent's purge, a folder removed by hand), so a hit is checked
//     against the published folder's manifest first;
//   - a model is served only to callers that name the source it was filled from
//     (common/uri.h SameSource): whoever fills NAME@VERSION first must not decide what every
//     later caller of that name gets. A caller naming another source gets FAILED_PRECONDITION
//     naming both, so `modelcachectl fetch --fallback` downloads it into the pod's own disk.
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

enum class HitAction {
  kServe,      // the folder is there, from the source asked for: answer READY
  kFillAgain,  // the folder is gone: forget it and fill again (single flight as usual)
  kRefuse,     // answer HitDecision::error
};

struct HitDecision {
  HitAction action = HitAction::kRefuse;
  absl::Status error;  // kRefuse only
};

// `on_disk`: ReadManifest of models/<name>/<version>/ now (NOT_FOUND once the folder or the
// whole cache root is gone). Refuses with FAILED_PRECONDITION (OtherSourceError) when the model
// came from another source than `asked_source`, with DATA_LOSS when the manifest there is for
// another model, and with the read error, annotated with the model, when it cannot be read.
HitDecision DecideHit(std::string_view name, std::string_view version,
                      const absl::StatusOr<v1::Manifest>& on_disk, std::string_view asked_source);

// Where the model of the other source is.
enum class SourceConflict {
  kPublished,  // on the volume already
  kFilling,    // being filled by this agent for an earlier caller
  kFillingOnAnotherAgent,  // being filled by another agent of the volume (`node`)
};

// FAILED_PRECONDITION: "model NAME@VERSION ... from THEIRS, not from ASKED as asked ...",
// saying how to get the model anyway.
absl::Status OtherSourceError(std::string_view name, std::string_view version,
                              SourceConflict where, std::string_view their_source,
                              std::string_view asked_source, std::string_view node = {});

}  // namespace modelcache
