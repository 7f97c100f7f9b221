#pragma once
// Where a model version may come from, as pure functions: the registry's current entry and a
// requested change in, a decision or a refusal that names both out. No database, no clock.
// Sources are compared in their normalized spelling (NormalizeSourceUri, common/uri.h); the
// callers normalize before they ask.
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace modelcache {

// OK when `source` falls under `prefix`: equal to it, or longer and continuing after a '/'
// (the prefix's last character or the source's next one), so that "s3://models/llama" does
// not admit "s3://models/llama-evil/". Under an http(s) prefix, the path after it may not hold
// "%2F", "%5C" or a backslash (an origin may decode them into separators and resolve ".." across
// them). An empty prefix admits everything. Otherwise FAILED_PRECONDITION naming the model
// version, the source and the prefix.
absl::Status CheckSourcePrefix(std::string_view name, std::string_view version,
                               std::string_view source, std::string_view prefix);

// How a caller wants a version's source written.
enum class SourceChange {
  kSet,           // set-source: register, or replace the registered source
  kRegisterOnly,  // prefetch: register when none is; a different registered source is refused
};

// The registry's entry for one version as the decision needs it.
struct SourceEntry {
  std::optional<std::string> source;  // nullopt: not registered
  std::string prefix;                 // the model's source prefix; empty: none
};

// True when the entry must be written (a new or different source); false when `source` is
// the registered one already. Errors: the prefix refuses it (CheckSourcePrefix), or, for
// kRegisterOnly, another source is registered (FAILED_PRECONDITION naming both and the
// command that changes it).
absl::StatusOr<bool> DecideSourceChange(std::string_view name, std::string_view version,
                                        std::string_view source, const SourceEntry& entry,
                                        SourceChange change);

}  // namespace modelcache
