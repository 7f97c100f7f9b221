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

// One spelling per source, so that two URIs naming the same place compare equal: the scheme,
// the http(s) host and the s3 bucket in lower case, no default port (:80 for http, :443 for
// https), "file://localhost/p" as "file:///p", "s3://bucket" as "s3://bucket/". The path and
// query keep their case, and a trailing '/' stays significant (a directory is not a file).
// The errors of ParseSourceUri.
absl::StatusOr<std::string> NormalizeSourceUri(std::string_view uri);

}  // namespace modelcache
