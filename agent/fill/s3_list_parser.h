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

// Replaces the five predefined XML entities and numeric character references (&#38; &#x26;,
// written as UTF-8); an unknown or unterminated entity is kept literally.
std::string DecodeXmlEntities(std::string_view text);

}  // namespace modelcache
