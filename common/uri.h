#pragma once
// Model source URIs: s3://bucket/prefix, http(s)://host/path, file:///absolute/path.
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache {

struct SourceUri {
  std::string scheme;     // "s3", "http", "https" or "file"
  std::string authority;  // bucket for s3, host[:port] for http(s), empty for file
  std::string path;       // s3: key prefix without leading '/', as written (not decoded);
                          // http: path + query; file: absolute
};

// s3: the key prefix is taken as written, any UTF-8 (spaces and non-ASCII included; no
// percent-decoding: "%20" is three characters of the key), and requests encode it.
// http(s): sent as written, so special characters are percent-encoded in the URL already.
// INVALID_ARGUMENT for an unknown scheme (names it and the accepted ones), a missing bucket
// or host, a relative file path, a path with "..", a control character, a space outside an
// s3 key, or an s3 uri that is not valid UTF-8.
absl::StatusOr<SourceUri> ParseSourceUri(std::string_view uri);

}  // namespace modelcache
