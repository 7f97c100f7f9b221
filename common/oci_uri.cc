#include "common/oci_uri.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/split.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// distribution/reference: path-component := alpha-numeric (separator alpha-numeric)*,
// separator := [_.] | "__" | [-]+.
bool IsRepositoryComponent(std::string_view part) {
  if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
  for (size_t i = 0; i < part.size();) {
    if (IsLowerAlnum(part[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < part.size() && !IsLowerAlnum(part[end])) ++end;
    const std::string_view separator = part.substr(i, end - i);
    const bool dashes = std::all_of(separator.begin(), separator.end(), [](char c) { return c == '-'; });
    if (!(separator == "." || separator == "_" || separator == "__" || dashes)) return false;
    i = end;
  }
  return true;
}

// tag := [\w][\w.-]{0,127}
bool IsTag(std::string_view tag) {
  auto word = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (tag.empty() || tag.size() > 128 || !word(tag.front())) return false;
  return std::all_of(tag.begin(), tag.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

// host[:port], a bracketed IPv6 literal allowed.
bool IsRegistry(std::string_view registry) {
  if (registry.empty()) return false;
  return std::all_of(registry.begin(), registry.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
           c == '[' || c == ']';
  });
}

}  // namespace

bool IsSha256Digest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || !digest.starts_with(kPrefix)) return false;
  return std::all_of(digest.begin() + kPrefix.size(), digest.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool OciUri::IsLoopbackRegistry() const {
  std::string_view host = registry;
  if (host.starts_with('[')) {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "[::1]" || host.starts_with("127.");
}

absl::StatusOr<OciUri> ParseOciUri(std::string_view uri) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("source uri \"{}\": {}", uri, why));
  };
  constexpr std::string_view kScheme = "oci://";
  if (uri.size() < kScheme.size() ||
      absl::AsciiStrToLower(absl::string_view(uri.data(), kScheme.size())) != kScheme) {
    return invalid("not an oci:// uri");
  }
  std::string_view rest = uri.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return invalid("want oci://<registry>/<repository>[:<tag>|@sha256:<digest>]");
  }
  OciUri parsed;
  const std::string_view registry = rest.substr(0, slash);
  if (!IsRegistry(registry)) return invalid(fmt::format("bad registry \"{}\"", registry));
  parsed.registry = absl::AsciiStrToLower(absl::string_view(registry.data(), registry.size()));
  rest.remove_prefix(slash + 1);

  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    const std::string_view digest = rest.substr(at + 1);
    if (digest.starts_with("sha256:") ? !IsSha256Digest(digest) : true) {
      return invalid(fmt::format("bad digest \"{}\" (want sha256: and 64 lower-case hex digits)", digest));
    }
    parsed.digest = std::string(digest);
    rest = rest.substr(0, at);
  }
  // A ':' after the last '/' starts the tag.
  const size_t last_slash = rest.rfind('/');
  const size_t colon = rest.find(':', last_slash == std::string_view::npos ? 0 : last_slash);
  if (colon != std::string_view::npos) {
    const std::string_view tag = rest.substr(colon + 1);
    if (!IsTag(tag)) return invalid(fmt::format("bad tag \"{}\"", tag));
    parsed.tag = std::string(tag);
    rest = rest.substr(0, colon);
  } else if (parsed.digest.empty()) {
    parsed.tag = "latest";
  }
  if (rest.empty() || rest.size() > 255) return invalid("missing or too long repository name");
  for (std::string_view part : SplitOn(rest, '/')) {
    if (!IsRepositoryComponent(part)) {
      return invalid(fmt::format("bad repository component \"{}\" (lower case [a-z0-9] joined by "
                                 "'.', '_', '__' or '-')",
                                 part));
    }
  }
  parsed.repository = std::string(rest);
  return parsed;
}

std::string FormatOciUri(const OciUri& uri) {
  if (!uri.digest.empty()) return fmt::format("oci://{}/{}@{}", uri.registry, uri.repository, uri.digest);
  return fmt::format("oci://{}/{}:{}", uri.registry, uri.repository, uri.tag);
}

}  // namespace modelcache
