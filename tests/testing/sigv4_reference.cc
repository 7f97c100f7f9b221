#include "tests/testing/sigv4_reference.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace modelcache::testing {
namespace {

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0f]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return Hex(digest, sizeof digest);
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string UriDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexDigit(text[i + 1]) >= 0 && HexDigit(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigit(text[i + 1]) * 16 + HexDigit(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// UriEncode() from the SigV4 documentation: everything but A-Za-z0-9-_.~ as %XX (upper case).
std::string UriEncode(std::string_view text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out += {'%', kDigits[byte >> 4], kDigits[byte & 0x0f]};
    }
  }
  return out;
}

// S3's canonical URI: the key as S3 reads it from the request (each '/'-separated segment
// percent-decoded), URI-encoded once. A client that sent a character S3 would encode (a
// space, '+', non-ASCII) signs another path than the one S3 checks.
std::string CanonicalPath(std::string_view path) {
  std::string out;
  while (true) {
    const size_t slash = path.find('/');
    out += UriEncode(UriDecode(path.substr(0, slash)));
    if (slash == std::string_view::npos) break;
    out.push_back('/');
    path.remove_prefix(slash + 1);
  }
  return out;
}

std::string CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> parameters;
  while (!query.empty()) {
    const size_t amp = std::min(query.find('&'), query.size());
    const std::string_view parameter = query.substr(0, amp);
    query.remove_prefix(std::min(amp + 1, query.size()));
    if (parameter.empty()) continue;
    const size_t equals = parameter.find('=');
    const std::string_view name = parameter.substr(0, equals);
    const std::string_view value = equals == std::string_view::npos ? "" : parameter.substr(equals + 1);
    parameters.emplace_back(UriEncode(UriDecode(name)), UriEncode(UriDecode(value)));
  }
  std::sort(parameters.begin(), parameters.end());
  std::string out;
  for (const auto& [name, value] : parameters) {
    if (!out.empty()) out.push_back('&');
    out += name + "=" + value;
  }
  return out;
}

// Trimmed, with runs of spaces collapsed to one, as the canonical header rules say.
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (const char c : value) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string SigV4CanonicalRequest(const SigV4Request& request, std::vector<std::string> signed_headers,
                                  std::string_view payload_hash) {
  std::sort(signed_headers.begin(), signed_headers.end());
  const std::string_view target = request.target;
  const size_t question = std::min(target.find('?'), target.size());
  // S3 encodes the path once (no second encoding as other services do, no normalisation).
  std::string canonical = request.method + "\n" + CanonicalPath(target.substr(0, question)) + "\n" +
                          CanonicalQuery(target.substr(std::min(question + 1, target.size()))) + "\n";
  for (const std::string& name : signed_headers) {
    std::vector<std::string> values;
    for (const auto& [header_name, value] : request.headers) {
      if (Lower(header_name) == name) values.push_back(CanonicalHeaderValue(value));
    }
    if (values.empty()) throw std::invalid_argument("signed header " + name + " is not in the request");
    std::string joined;
    for (const std::string& value : values) joined += (joined.empty() ? "" : ",") + value;
    canonical += name + ":" + joined + "\n";
  }
  canonical += "\n";
  for (size_t i = 0; i < signed_headers.size(); ++i) {
    canonical += (i == 0 ? "" : ";") + signed_headers[i];
  }
  canonical += "\n" + std::string(payload_hash);
  return canonical;
}

std::string SigV4Authorization(const SigV4Request& request, std::vector<std::string> signed_headers,
                               std::string_view payload_hash, std::string_view amz_date,
                               const SigV4Key& key) {
  std::sort(signed_headers.begin(), signed_headers.end());
  const std::string date(amz_date.substr(0, 8));
  const std::string scope = date + "/" + key.region + "/" + key.service + "/aws4_request";
  const std::string string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + scope + "\n" +
                                     Sha256Hex(SigV4CanonicalRequest(request, signed_headers, payload_hash));
  std::string signing_key = HmacSha256("AWS4" + key.secret_access_key, date);
  signing_key = HmacSha256(signing_key, key.region);
  signing_key = HmacSha256(signing_key, key.service);
  signing_key = HmacSha256(signing_key, "aws4_request");
  const std::string signature = HmacSha256(signing_key, string_to_sign);

  std::string signed_list;
  for (size_t i = 0; i < signed_headers.size(); ++i) signed_list += (i == 0 ? "" : ";") + signed_headers[i];
  return "AWS4-HMAC-SHA256 Credential=" + key.access_key_id + "/" + scope +
         ", SignedHeaders=" + signed_list +
         ", Signature=" + Hex(reinterpret_cast<const unsigned char*>(signature.data()), signature.size());
}

}  // namespace modelcache::testing
