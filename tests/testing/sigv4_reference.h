#pragma once
// An independent AWS Signature Version 4 implementation (OpenSSL HMAC/SHA-256, canonical
// request as the AWS documentation defines it). Tests only: it checks that the signatures
// libcurl computes for our requests are the ones S3 would accept.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace modelcache::testing {

struct SigV4Request {
  std::string method;  // "GET"
  std::string target;  // request target as sent: "/bucket/?list-type=2&prefix=a%2Fb"
  std::vector<std::pair<std::string, std::string>> headers;  // as received, any case
};

struct SigV4Key {
  std::string access_key_id;
  std::string secret_access_key;
  std::string region;   // "us-east-1"
  std::string service;  // "s3"
};

// The canonical request for `request`, signing the headers named in `signed_headers`
// (lowercase, any order) with `payload_hash` as the hashed payload. The query is decoded and
// re-encoded per RFC 3986 and sorted, as AWS does on its side; so is the path, segment by
// segment, once (S3's rule), so a key sent with a character S3 would encode fails the check.
std::string SigV4CanonicalRequest(const SigV4Request& request, std::vector<std::string> signed_headers,
                                  std::string_view payload_hash);

// The full Authorization header value ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=...") for a request made at `amz_date` ("20130524T000000Z").
std::string SigV4Authorization(const SigV4Request& request, std::vector<std::string> signed_headers,
                               std::string_view payload_hash, std::string_view amz_date,
                               const SigV4Key& key);

}  // namespace modelcache::testing
