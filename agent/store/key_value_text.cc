#include "agent/store/key_value_text.h"

#include <charconv>

#include "spdlog/fmt/fmt.h"

namespace modelcache {

std::string FormatKeyValues(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string text;
  for (const auto& [key, value] : entries) {
    text += key;
    text += '=';
    text += value;
    text += '\n';
  }
  return text;
}

absl::Status ValidateValue(std::string_view what, std::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(fmt::format("{} must not be empty", what));
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          fmt::format("{} '{}' contains a control character", what, value));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyValues> ParseKeyValues(std::string_view text, const std::filesystem::path& path) {
  KeyValues values;
  size_t line_number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (line.empty()) continue;
    size_t equals = line.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      return absl::DataLossError(
          fmt::format("{}: line {} is not key=value", path.string(), line_number));
    }
    auto [it, inserted] =
        values.emplace(std::string(line.substr(0, equals)), std::string(line.substr(equals + 1)));
    if (!inserted) {
      return absl::DataLossError(
          fmt::format("{}: key '{}' repeated on line {}", path.string(), it->first, line_number));
    }
  }
  return values;
}

absl::StatusOr<std::string> RequiredValue(const KeyValues& values, std::string_view key,
                                          const std::filesystem::path& path) {
  auto it = values.find(key);
  if (it == values.end()) {
    return absl::DataLossError(fmt::format("{}: no '{}'", path.string(), key));
  }
  return it->second;
}

absl::StatusOr<int64_t> RequiredInt(const KeyValues& values, std::string_view key,
                                    const std::filesystem::path& path) {
  auto it = values.find(key);
  if (it == values.end()) {
    return absl::DataLossError(fmt::format("{}: no '{}'", path.string(), key));
  }
  const std::string& text = it->second;
  int64_t number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return absl::DataLossError(
        fmt::format("{}: '{}' is not a number: '{}'", path.string(), key, text));
  }
  return number;
}

}  // namespace modelcache
