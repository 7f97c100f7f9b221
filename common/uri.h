#pragma once
// Model source URIs: s3://bucket/prefix, http(s)://host/path, file:///absolute/path.
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache {

// The longest source URI accepted, in bytes: room for an S3 key (1024 bytes) or a presigned
// URL with a session token, while every error message that quotes a URI stays well inside
// gRPC's 8 KiB of response metadata (a longer one came back as "RESOURCE_EXHAUSTED: received
// initial metadata size exceeds limit"). modelcachectl and the agent both check it.
inline constexpr size_t kMaxSourceUriBytes = 4096;

// INVALID_ARGUMENT when `uri` is longer than kMaxSourceUriBytes; the message gives its length,
// the limit and the URI's first bytes, never the whole URI.
absl::Status CheckSourceUriLength(std::string_view uri);

struct SourceUri {
  std::string scheme;     // "s3", "http", "https" or "file"
  std::string authority;  // bucket for s3, host[:port] for http(s), empty for file
  std::string path;       // s3: key prefix without leading '/'; http: path + query; file: absolute
};

// INVALID_ARGUMENT for a URI over kMaxSourceUriBytes (CheckSourceUriLength), an unknown scheme
// (names it and the accepted ones), a missing bucket or host, a relative file path, or a path
// with "..".
absl::StatusOr<SourceUri> ParseSourceUri(std::string_view uri);

}  // namespace modelcache
