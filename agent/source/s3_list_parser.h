#pragma once
// Parses S3 XML responses: ListObjectsV2 pages and error documents. Pure functions.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace modelcache {

struct S3Object {
  std::string key;   // entity-decoded
  uint64_t size = 0;
  std::string etag;  // as S3 states it, quotes included ("\"9b2cf5...\""), like the ETag header
  // <ChecksumAlgorithm> SHA256 listed: the object was uploaded with a SHA-256 checksum, which
  // a HEAD with x-amz-checksum-mode: ENABLED returns (the listing does not carry the value).
  bool has_sha256_checksum = false;
};

struct S3ListPage {
  std::vector<S3Object> objects;       // the <Contents> entries, in document order
  bool is_truncated = false;
  std::string next_continuation_token; // non-empty whenever is_truncated
};

// One ListObjectsV2 response body (<ListBucketResult>). INVALID_ARGUMENT when it is not
// well-formed enough to trust: another root element, unbalanced tags, a <Contents> without
// <Key>, a Size that is not a number, or IsTruncated=true without NextContinuationToken.
absl::StatusOr<S3ListPage> ParseListObjectsV2(std::string_view xml);

struct S3Error {
  std::string code;     // "NoSuchBucket", "AccessDenied", ...
  std::string message;
};

// The <Error> document S3 sends with a failed request; nullopt when `xml` is not one.
std::optional<S3Error> ParseS3Error(std::string_view xml);

// The SHA-256 of a whole object from an x-amz-checksum-sha256 header (base64 of 32 bytes) as
// lowercase hex. nullopt for a composite checksum of a multipart upload ("<base64>-<parts>",
// or `checksum_type` COMPOSITE: a hash of the parts' hashes, not of the bytes) and for a value
// that is not base64 of 32 bytes.
std::optional<std::string> WholeObjectSha256Hex(std::string_view header_value,
                                                std::string_view checksum_type = {});

// Replaces the five predefined XML entities and numeric character references (&#38; &#x26;,
// written as UTF-8); an unknown or unterminated entity is kept literally.
std::string DecodeXmlEntities(std::string_view text);

}  // namespace modelcache
