#include "common/uri.h"

#include "absl/strings/ascii.h"
#include "common/safe_text.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// True when a '/'-separated path has a ".." component (before any query string).
bool HasDotDot(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
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
    return absl::InvalidArgumentError(fmt::format("source uri \"{}\": {}", uri, why));
  };
  size_t separator = uri.find("://");
  if (separator == std::string_view::npos || separator == 0) {
    return invalid("no scheme (want s3://, http://, https:// or file://)");
  }
  SourceUri parsed;
  parsed.scheme = absl::AsciiStrToLower(absl::string_view(uri.data(), separator));
  if (parsed.scheme != "s3" && parsed.scheme != "http" && parsed.scheme != "https" &&
      parsed.scheme != "file") {
    return invalid(
        fmt::format("unknown scheme \"{}\" (want s3, http, https or file)", parsed.scheme));
  }
  for (char c : uri) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ' ') {
      return invalid("contains a space or control character");
    }
  }
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
  if (HasDotDot(path)) return invalid("path contains \"..\"");
  if (parsed.scheme == "s3") {
    if (authority.empty()) return invalid("missing bucket");
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

}  // namespace modelcache
