#include "common/names.h"

#include <string>

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

constexpr size_t kMaxPathPartLength = 255;
constexpr std::string_view kReservedPrefix = ".modelcache";

// Quotes a value for an error message; control characters become \xNN so that a NUL or a
// newline in a bad name cannot break a log line.
std::string Quote(std::string_view value) {
  std::string quoted = "\"";
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      quoted += "\\x";
      quoted += kHex[c >> 4];
      quoted += kHex[c & 0xf];
    } else {
      quoted += static_cast<char>(c);
    }
  }
  quoted += '"';
  return quoted;
}

bool IsNameCharacter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

absl::Status ValidateName(std::string_view what, std::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(fmt::format("{} is empty", what));
  if (value.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(fmt::format("{} {}...: longer than {} characters ({})", what,
                                                  Quote(value.substr(0, 32)), kMaxNameLength,
                                                  value.size()));
  }
  if (value.front() == '.') {
    return absl::InvalidArgumentError(
        fmt::format("{} {}: must not start with '.'", what, Quote(value)));
  }
  for (char c : value) {
    if (!IsNameCharacter(c)) {
      return absl::InvalidArgumentError(fmt::format(
          "{} {}: only letters, digits, '.', '_' and '-' are allowed", what, Quote(value)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModelName(std::string_view name) { return ValidateName("model name", name); }

absl::Status ValidateModelVersion(std::string_view version) {
  return ValidateName("model version", version);
}

absl::Status ValidateRelativeFilePath(std::string_view path) {
  auto invalid = [&](std::string_view why) {
    std::string_view shown = path.size() > 64 ? path.substr(0, 64) : path;
    return absl::InvalidArgumentError(
        fmt::format("file path {}{}: {}", Quote(shown), path.size() > 64 ? "..." : "", why));
  };
  if (path.empty()) return invalid("empty");
  if (path.size() > kMaxRelativePathLength) {
    return invalid(fmt::format("longer than {} bytes ({})", kMaxRelativePathLength, path.size()));
  }
  if (path.front() == '/') return invalid("must be relative");
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return invalid("contains a control character");
    if (c == '\\') return invalid("contains a backslash");
  }
  size_t start = 0;
  while (true) {
    size_t end = path.find('/', start);
    std::string_view part =
        path.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty()) return invalid("has an empty component");
    if (part == "." || part == "..") return invalid("has a '.' or '..' component");
    if (part.size() > kMaxPathPartLength) {
      return invalid(fmt::format("has a component longer than {} bytes", kMaxPathPartLength));
    }
    if (part.substr(0, kReservedPrefix.size()) == kReservedPrefix) {
      return invalid("has a component starting with \".modelcache\" (reserved)");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return absl::OkStatus();
}

}  // namespace modelcache
