#pragma once
// Model source URIs: s3://bucket/prefix, http(s)://host/path, file:///absolute/path, and the
// Hugging Face Hub (hf://owner/repo..., common/hf_uri.h) and OCI registries
// (oci://registry/repository..., common/oci_uri.h).
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
  std::string scheme;     // "s3", "http", "https", "file", "hf" or "oci"
  std::string authority;  // bucket for s3, host[:port] for http(s) and oci, empty for file,
                          // owner/repo for hf
  std::string path;       // s3: key prefix without leading '/', as written (not decoded);
                          // http: path + query; file: absolute; hf, oci: the rest of the
                          // canonical form ("@main/sub", "/repo:tag")
};

// s3: the key prefix is taken as written, any UTF-8 (spaces and non-ASCII included; no
// percent-decoding: "%20" is three characters of the key), and requests encode it.
// http(s): sent as written, so special characters are percent-encoded in the URL already.
// INVALID_ARGUMENT for a URI over kMaxSourceUriBytes (CheckSourceUriLength), an unknown scheme
// (names it and the accepted ones), a missing bucket or host, a relative file path, a path
// with ".." (in an http(s) URL also as "%2E%2E"), a control character, a space outside an s3
// key, or an s3 uri that is not valid UTF-8. Messages quote the uri with unsafe bytes escaped.
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
//   hf            FormatHfUri: the default revision written out ("hf://o/r" is "hf://o/r@main"),
//                 the subfolder without extra slashes, allow/ignore patterns sorted. The
//                 repository id and the revision stay as written (a branch and the commit it
//                 points to are different sources: the branch moves).
//   oci           FormatOciUri: the registry in lower case, ":latest" written out, a tag beside
//                 a digest left out (the digest names the bytes).
// INVALID_ARGUMENT as ParseSourceUri.
absl::StatusOr<std::string> NormalizeSourceUri(std::string_view uri);

// True when `a` and `b` normalize to the same form; URIs that do not parse are the same only
// when they are byte-for-byte equal.
bool SameSource(std::string_view a, std::string_view b);

}  // namespace modelcache
