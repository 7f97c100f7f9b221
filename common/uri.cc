#include "common/uri.h"

#include "absl/strings/ascii.h"
#include "common/percent_encoding.h"
#include "common/safe_text.h"
#include "common/hf_uri.h"
#include "common/oci_uri.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// True when a '/'-separated path has a ".." component (before any query string, when
// `has_query`: an s3 key has none, '?' and '#' are characters of the key).
bool HasDotDot(std::string_view path, bool has_query = true) {
  if (has_query) path = path.substr(0, path.find_first_of("?#"));
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

// How much of an over-long URI its error message quotes.
constexpr size_t kQuotedUriBytes = 80;

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// Bucket names, as S3 and the common S3-compatible stores allow them.
bool IsBucketName(std::string_view bucket) {
  for (char c : bucket) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      return false;
    }
  }
  return true;
}


// RFC 3986 6.2.2.1 and 6.2.2.2: "%xx" in upper case, unreserved characters unescaped. A '%'
// not followed by two hex digits stays as it is.
std::string NormalizePercentEncoding(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      char decoded = static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      if (IsUnreservedUriChar(decoded)) {
        out.push_back(decoded);
      } else {
        out.push_back('%');
        out.push_back(absl::ascii_toupper(static_cast<unsigned char>(text[i + 1])));
        out.push_back(absl::ascii_toupper(static_cast<unsigned char>(text[i + 2])));
      }
      i += 2;
      continue;
    }
    out.push_back(text[i]);
  }
  return out;
}

// "Host:80" -> "host" for http; "[::1]:443" -> "[::1]" for https.
std::string NormalizeAuthority(std::string_view scheme, std::string_view authority) {
  std::string lower = absl::AsciiStrToLower(absl::string_view(authority.data(), authority.size()));
  size_t colon = lower.rfind(':');
  // A colon inside an IPv6 literal's brackets is not a port separator.
  if (colon == std::string::npos || lower.find(']', colon) != std::string::npos) return lower;
  std::string_view port = std::string_view(lower).substr(colon + 1);
  if (port.empty() || (scheme == "http" && port == "80") || (scheme == "https" && port == "443")) {
    lower.resize(colon);
  }
  return lower;
}

}  // namespace

absl::Status CheckSourceUriLength(std::string_view uri) {
  if (uri.size() <= kMaxSourceUriBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format(
      "source uri of {} bytes is longer than the limit of {} bytes (it starts \"{}\")", uri.size(),
      kMaxSourceUriBytes, EscapeUnsafeBytes(uri.substr(0, kQuotedUriBytes))));
}

absl::StatusOr<SourceUri> ParseSourceUri(std::string_view uri) {
  if (absl::Status length = CheckSourceUriLength(uri); !length.ok()) return length;
  auto invalid = [&](std::string_view why) {
    // Escaped: the uri may hold any bytes, and this message reaches logs.
    return absl::InvalidArgumentError(
        fmt::format("source uri \"{}\": {}", EscapeUnsafeBytes(uri), why));
  };
  size_t separator = uri.find("://");
  if (separator == std::string_view::npos || separator == 0) {
    return invalid("no scheme (want s3://, http://, https://, file://, hf:// or oci://)");
  }
  SourceUri parsed;
  parsed.scheme = absl::AsciiStrToLower(absl::string_view(uri.data(), separator));
  if (parsed.scheme != "s3" && parsed.scheme != "http" && parsed.scheme != "https" &&
      parsed.scheme != "file" && parsed.scheme != "hf" && parsed.scheme != "oci") {
    return invalid(fmt::format("unknown scheme \"{}\" (want s3, http, https, file, hf or oci)",
                               parsed.scheme));
  }
  // hf and oci have grammars of their own (common/hf_uri.h, common/oci_uri.h).
  if (parsed.scheme == "hf") {
    absl::StatusOr<HfUri> hf = ParseHfUri(uri);
    if (!hf.ok()) return hf.status();
    parsed.authority = hf->repo_id;
    parsed.path = FormatHfUri(*hf).substr(5 + hf->repo_id.size());
    return parsed;
  }
  if (parsed.scheme == "oci") {
    absl::StatusOr<OciUri> oci = ParseOciUri(uri);
    if (!oci.ok()) return oci.status();
    parsed.authority = oci->registry;
    parsed.path = FormatOciUri(*oci).substr(6 + oci->registry.size());
    return parsed;
  }
  // An s3 key is any UTF-8 text, spaces included, taken as written (as the AWS CLI takes
  // it): each request encodes it (SigV4's URI encoding), so "%20" in an s3 uri is three
  // characters of the key. An http(s) URL is sent as written, so a space there is %20.
  const bool s3 = parsed.scheme == "s3";
  for (char c : uri) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return invalid("contains a control character");
    if (c == ' ' && !s3) {
      return invalid(parsed.scheme == "file" ? "contains a space"
                                             : "contains a space (a URL writes it as %20)");
    }
  }
  if (s3 && !IsValidUtf8(uri)) return invalid("is not valid UTF-8");
  std::string_view rest = uri.substr(separator + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);

  if (parsed.scheme == "file") {
    if (!authority.empty() && authority != "localhost") {
      return invalid("file uri must be file:///absolute/path (no host)");
    }
    if (path.empty() || path.front() != '/') return invalid("file path must be absolute");
    if (HasDotDot(path)) return invalid("path contains \"..\"");
    parsed.path = std::string(path);
    return parsed;
  }
  if (HasDotDot(path, /*has_query=*/!s3)) return invalid("path contains \"..\"");
  // "%2E%2E" is ".." to every server (RFC 3986 6.2.2.2) and is so in the normalized form
  // that the registry stores and agents fetch.
  if (!s3 && HasDotDot(NormalizePercentEncoding(path))) {
    return invalid("path contains \"..\" (written as %2E%2E)");
  }
  if (s3) {
    if (authority.empty()) return invalid("missing bucket");
    if (!IsBucketName(authority)) {
      return invalid("bucket name may hold only letters, digits, '.', '-' and '_'");
    }
    parsed.authority = std::string(authority);
    parsed.path = std::string(path.empty() ? path : path.substr(1));
    return parsed;
  }
  // http(s): the query may follow the host without a path ("http://h?x=1").
  size_t query = authority.find_first_of("?#");
  if (query != std::string_view::npos) {
    path = rest.substr(query);
    authority = authority.substr(0, query);
  }
  if (authority.empty()) return invalid("missing host");
  if (authority.find('@') != std::string_view::npos) {
    return invalid("credentials in the uri are not supported");
  }
  parsed.authority = std::string(authority);
  if (path.empty() || path.front() != '/') {
    parsed.path = fmt::format("/{}", path);
  } else {
    parsed.path = std::string(path);
  }
  return parsed;
}

absl::StatusOr<std::string> NormalizeSourceUri(std::string_view uri) {
  absl::StatusOr<SourceUri> parsed = ParseSourceUri(uri);
  if (!parsed.ok()) return parsed.status();
  if (parsed->scheme == "file") return fmt::format("file://{}", parsed->path);
  if (parsed->scheme == "hf") return FormatHfUri(*ParseHfUri(uri));
  if (parsed->scheme == "oci") return FormatOciUri(*ParseOciUri(uri));
  if (parsed->scheme == "s3") return fmt::format("s3://{}/{}", parsed->authority, parsed->path);
  return fmt::format("{}://{}{}", parsed->scheme,
                     NormalizeAuthority(parsed->scheme, parsed->authority),
                     NormalizePercentEncoding(parsed->path));
}

bool SameSource(std::string_view a, std::string_view b) {
  if (a == b) return true;
  absl::StatusOr<std::string> normal_a = NormalizeSourceUri(a);
  absl::StatusOr<std::string> normal_b = NormalizeSourceUri(b);
  return normal_a.ok() && normal_b.ok() && *normal_a == *normal_b;
}

}  // namespace modelcache
