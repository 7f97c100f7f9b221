#pragma once
// http(s):// sources: a directory described by <url>modelcache.json, or a single file.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/source/source.h"

namespace modelcache {

// `url` ending in '/' is a directory, anything else a single file (see MakeSource).
std::unique_ptr<Source> MakeHttpSource(std::string url, const SourceOptions& options);

// The files of a directory listing: `json` is a v1::HttpDirectoryListing (protobuf JSON
// mapping, unknown fields ignored) served at <base_url>modelcache.json; each location is
// base_url + the percent-encoded path. INVALID_ARGUMENT for malformed JSON, an invalid or
// duplicate path, or a sha256 that is not 64 hex digits (upper case is accepted and lowered).
absl::StatusOr<std::vector<SourceFile>> ParseHttpDirectoryListing(std::string_view json,
                                                                  std::string_view base_url);

}  // namespace modelcache
