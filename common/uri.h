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

// The form in which two source URIs are compared: a model cached from one source is served
// only to callers that name the same source (SameSource). Two URIs are the same source when
// they fetch the same bytes by the rules of their scheme, and only then; anything in doubt
// stays different (the caller then downloads for itself, which is safe; the reverse would
// serve one tenant's bytes to another):
//   every scheme  the scheme in lower case ("HTTPS://" is "https://")
//   http(s)       the host in lower case, the default port dropped (":80" for http, ":443"
//                 for https), an empty path is "/", percent-escapes in upper case ("%2f" is
//                 "%2F") and escapes of unreserved characters decoded ("%7E" is "~"), as
//                 RFC 3986 section 6.2.2 says every server must treat them. The path, the
//                 query and a trailing '/' (a directory listing, not a file) stay as written.
//   s3            bucket and key prefix exactly as written (keys are case-sensitive; a
//                 trailing '/' stays: "s3://b/x" may be one object, "s3://b/x/" is a folder).
//                 "s3://bucket" and "s3://bucket/" are the same (the whole bucket).
//   file          "file://localhost/p" is "file:///p"; the path stays as written.
// INVALID_ARGUMENT as ParseSourceUri.
absl::StatusOr<std::string> NormalizeSourceUri(std::string_view uri);

// True when `a` and `b` normalize to the same form; URIs that do not parse are the same only
// when they are byte-for-byte equal.
bool SameSource(std::string_view a, std::string_view b);

}  // namespace modelcache
