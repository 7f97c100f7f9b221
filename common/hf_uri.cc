#include "common/hf_uri.h"

#include <fnmatch.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/split.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

constexpr size_t kMaxNamePart = 96;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Everything but RFC 3986's unreserved characters, so the canonical form has one spelling.
std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
      out.push_back(kHex[static_cast<unsigned char>(c) & 0x0f]);
    }
  }
  return out;
}

// A part of a repository id: [A-Za-z0-9._-], 1..96 characters, not "." or "..".
bool IsRepoNamePart(std::string_view part) {
  if (part.empty() || part.size() > kMaxNamePart || part == "." || part == "..") return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool IsBadRevision(std::string_view revision) {
  if (revision.empty()) return true;
  for (char c : revision) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ' ' || c == '\\') return true;
  }
  for (std::string_view part : SplitOn(revision, '/')) {
    if (part.empty() || part == "." || part == "..") return true;
  }
  return false;
}

void SortUnique(std::vector<std::string>& patterns) {
  std::sort(patterns.begin(), patterns.end());
  patterns.erase(std::unique(patterns.begin(), patterns.end()), patterns.end());
}

bool MatchesAny(const std::vector<std::string>& patterns, std::string_view path) {
  const std::string text(path);
  for (std::string pattern : patterns) {
    if (pattern.ends_with('/')) pattern += '*';
    // No FNM_PATHNAME: '*' crosses folders, as in huggingface_hub's fnmatch.
    if (::fnmatch(pattern.c_str(), text.c_str(), 0) == 0) return true;
  }
  return false;
}

}  // namespace

std::string HfUri::ApiRepoPath() const { return fmt::format("{}s/{}", repo_type, repo_id); }

std::string HfUri::ResolveRepoPath() const {
  return repo_type == "model" ? repo_id : fmt::format("{}s/{}", repo_type, repo_id);
}

bool HfUri::Selects(std::string_view relative_path) const {
  if (!allow.empty() && !MatchesAny(allow, relative_path)) return false;
  return !MatchesAny(ignore, relative_path);
}

absl::StatusOr<HfUri> ParseHfUri(std::string_view uri) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("source uri \"{}\": {}", uri, why));
  };
  constexpr std::string_view kScheme = "hf://";
  if (uri.size() < kScheme.size() ||
      absl::AsciiStrToLower(absl::string_view(uri.data(), kScheme.size())) != kScheme) {
    return invalid("not an hf:// uri");
  }
  for (char c : uri) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ' ') {
      return invalid("contains a space or control character");
    }
  }
  std::string_view rest = uri.substr(kScheme.size());
  std::string_view query;
  if (size_t mark = rest.find('?'); mark != std::string_view::npos) {
    query = rest.substr(mark + 1);
    rest = rest.substr(0, mark);
  }
  if (rest.find('#') != std::string_view::npos) return invalid("a fragment ('#') is not allowed");

  HfUri parsed;
  if (rest.starts_with("datasets/")) {
    parsed.repo_type = "dataset";
    rest.remove_prefix(9);
  } else if (rest.starts_with("models/")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("spaces/")) {
    return invalid("spaces are not model sources (hf://<owner>/<repo> or hf://datasets/<owner>/<repo>)");
  }
  const size_t owner_end = rest.find('/');
  if (owner_end == std::string_view::npos) {
    return invalid("want hf://<owner>/<repo>[@<revision>][/<subfolder>]");
  }
  const std::string_view owner = rest.substr(0, owner_end);
  rest.remove_prefix(owner_end + 1);
  const size_t repo_end = std::min(rest.find_first_of("@/"), rest.size());
  const std::string_view repo = rest.substr(0, repo_end);
  rest.remove_prefix(repo_end);
  if (!IsRepoNamePart(owner) || !IsRepoNamePart(repo)) {
    return invalid(fmt::format("bad repository id \"{}/{}\" (want [A-Za-z0-9._-], at most {} each)",
                               owner, repo, kMaxNamePart));
  }
  parsed.repo_id = fmt::format("{}/{}", owner, repo);

  if (rest.starts_with('@')) {
    rest.remove_prefix(1);
    size_t revision_end = std::min(rest.find('/'), rest.size());
    // The Hub's own refs hold slashes: refs/pr/<n>, refs/convert/<name>.
    for (std::string_view prefix : {"refs/pr/", "refs/convert/"}) {
      if (rest.starts_with(prefix)) {
        revision_end = std::min(rest.find('/', prefix.size()), rest.size());
      }
    }
    parsed.revision = PercentDecode(rest.substr(0, revision_end));
    rest.remove_prefix(revision_end);
    if (IsBadRevision(parsed.revision)) return invalid("empty or malformed revision after '@'");
  }
  // What is left is "/<subfolder>" or nothing.
  std::vector<std::string> parts;
  for (std::string_view part : SplitOn(rest, '/')) {
    if (part.empty()) continue;
    std::string decoded = PercentDecode(part);
    if (decoded == "." || decoded == ".." || decoded.find('/') != std::string::npos ||
        decoded.find('\\') != std::string::npos) {
      return invalid("the subfolder holds \"..\", \".\" or an encoded separator");
    }
    parts.push_back(std::move(decoded));
  }
  for (size_t i = 0; i < parts.size(); ++i) parsed.subfolder += (i ? "/" : "") + parts[i];

  for (std::string_view pair : SplitOn(query, '&')) {
    if (pair.empty()) continue;
    const size_t equals = pair.find('=');
    const std::string_view key = pair.substr(0, equals);
    const std::string value =
        equals == std::string_view::npos ? "" : PercentDecode(std::string_view(pair.substr(equals + 1)));
    std::vector<std::string>* into = nullptr;
    if (key == "allow") into = &parsed.allow;
    if (key == "ignore") into = &parsed.ignore;
    if (into == nullptr) {
      return invalid(fmt::format("unknown query parameter \"{}\" (accepted: allow, ignore)",
                                 std::string_view(key.data(), key.size())));
    }
    for (std::string_view pattern : SplitOn(value, ',')) {
      if (!pattern.empty()) into->emplace_back(pattern);
    }
  }
  SortUnique(parsed.allow);
  SortUnique(parsed.ignore);
  return parsed;
}

std::string FormatHfUri(const HfUri& uri) {
  std::string out = fmt::format("hf://{}{}@{}", uri.repo_type == "dataset" ? "datasets/" : "",
                                uri.repo_id, PercentEncode(uri.revision));
  if (!uri.subfolder.empty()) {
    for (std::string_view part : SplitOn(uri.subfolder, '/')) {
      out += "/" + PercentEncode(part);
    }
  }
  char separator = '?';
  for (const auto& [key, patterns] : {std::pair{"allow", &uri.allow}, std::pair{"ignore", &uri.ignore}}) {
    for (const std::string& pattern : *patterns) {
      out += fmt::format("{}{}={}", separator, key, PercentEncode(pattern));
      separator = '&';
    }
  }
  return out;
}

}  // namespace modelcache
