#pragma once
// Adding context to an error on its way up: "model m@1: " + "file a.bin: sha256 mismatch".
// The code stays, and so do the payloads that mark an error for the code that handles it
// (a range-ignored answer, a YAML error that already names its line).
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace modelcache {

// `status` with "<context>: " before its message; OK stays OK.
inline absl::Status Annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  absl::Status annotated(
      status.code(),
      absl::StrCat(absl::string_view(context.data(), context.size()), ": ", status.message()));
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    annotated.SetPayload(type_url, payload);
  });
  return annotated;
}

}  // namespace modelcache
