#pragma once
// Model source URIs: s3://bucket/prefix, http(s)://host/path, file:///absolute/path.
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache {

struct SourceUri {
  std::string scheme;     // "s3", "http", "https" or "file"
  std::string authority;  // bucket for s3, host[:port] for http(s), empty for file
  std::string path;       // s3: key prefix without leading '/'; http: path + query; file: absolute
};

// INVALID_ARGUMENT for an unknown scheme (names it and the accepted ones), a missing bucket
// or host, a relative file path, or a path with "..".
absl::StatusOr<SourceUri> ParseSourceUri(std::string_view uri);

}  // namespace modelcache
