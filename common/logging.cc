#include "common/logging.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log_fields.h"
#include "common/safe_text.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// JSON string contents: quotes, backslashes and control characters escaped, and each byte
// that is not UTF-8 (raw bytes from a bad manifest or origin) written as the text \xNN, so
// the line is valid JSON (RFC 8259 wants UTF-8) and the byte can still be read off it.
void AppendJsonEscaped(std::string_view text, spdlog::memory_buf_t& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t pos = 0; pos < text.size();) {
    const auto c = static_cast<unsigned char>(text[pos]);
    const size_t length = Utf8SequenceLength(text, pos);
    if (length > 1) {
      out.append(text.substr(pos, length));
      pos += length;
      continue;
    }
    ++pos;
    if (length == 0) {
      char escaped[] = {'\\', '\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
      out.append(escaped, escaped + sizeof(escaped));
      continue;
    }
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          out.append(escaped, escaped + sizeof(escaped));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
}

std::string JsonEscaped(std::string_view text) {
  spdlog::memory_buf_t buffer;
  AppendJsonEscaped(text, buffer);
  return std::string(buffer.data(), buffer.size());
}

// A whole number that JSON can carry exactly: written unquoted.
bool IsJsonInteger(std::string_view value) {
  std::string_view digits = value.substr(value.size() > 1 && value[0] == '-' ? 1 : 0);
  if (digits.empty() || digits.size() > 15) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// "%*" in the JSON pattern: "msg":"<text>" and one member per key=value field of the message
// (common/log_fields.h), all escaped so that quotes or newlines cannot break the
// one-object-per-line format.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    SplitLogMessage split =
        SplitLogFields(std::string_view(message.payload.data(), message.payload.size()));
    dest.append(std::string_view("\"msg\":\""));
    AppendJsonEscaped(split.text, dest);
    dest.push_back('"');
    for (const auto& [key, value] : split.fields) {
      dest.append(std::string_view(",\""));
      // The line's own members keep their meaning.
      if (key == "ts" || key == "level" || key == "component" || key == "msg") {
        dest.append(std::string_view("field_"));
      }
      AppendJsonEscaped(key, dest);
      dest.append(std::string_view("\":"));
      if (IsJsonInteger(value)) {
        dest.append(value);
      } else {
        dest.push_back('"');
        AppendJsonEscaped(value, dest);
        dest.push_back('"');
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// "%*" in the text pattern: the message with bytes that are not UTF-8 and control characters
// written as \xNN (common/safe_text.h), so one event stays one line of valid UTF-8.
class TextMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view payload(message.payload.data(), message.payload.size());
    dest.append(EscapeUnsafeBytes(payload, Backslash::kKeep));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TextMessageFlag>();
  }
};

// A literal for a spdlog pattern: '%' starts a flag there.
std::string PatternLiteral(std::string_view text) {
  std::string literal;
  for (char c : text) {
    if (c == '%') literal += '%';
    literal += c;
  }
  return literal;
}

}  // namespace

absl::Status SetUpLogging(const LogOptions& options) {
  static constexpr struct {
    std::string_view name;
    spdlog::level::level_enum level;
  } kLevels[] = {
      {"trace", spdlog::level::trace},       {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},         {"warn", spdlog::level::warn},
      {"warning", spdlog::level::warn},      {"error", spdlog::level::err},
      {"critical", spdlog::level::critical}, {"off", spdlog::level::off},
  };
  const spdlog::level::level_enum* level = nullptr;
  for (const auto& entry : kLevels) {
    if (entry.name == options.level) level = &entry.level;
  }
  if (level == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("log level \"", absl::string_view(options.level.data(), options.level.size()),
                     "\": want trace, debug, info, warn, error, critical or off"));
  }

  std::string component(options.component.empty() ? "modelcache" : options.component);
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc,
                                                               std::string("\n"));
  if (options.json) {
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        absl::StrCat(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","component":")",
                     PatternLiteral(JsonEscaped(component)), R"(",%*})"));
  } else {
    formatter->add_flag<TextMessageFlag>('*').set_pattern(
        absl::StrCat("%Y-%m-%dT%H:%M:%S.%eZ %l ", PatternLiteral(component), " %*"));
  }

  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(std::move(formatter));
  auto logger = std::make_shared<spdlog::logger>(component, std::move(sink));
  logger->set_level(*level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

absl::Status ApplyLogEnvironment(std::string_view level_value, std::string_view json_value,
                                 std::string& level, bool& json) {
  if (!level_value.empty()) level = std::string(level_value);
  if (json_value.empty()) return absl::OkStatus();
  for (std::string_view yes : {"1", "true", "yes", "on"}) {
    if (json_value == yes) {
      json = true;
      return absl::OkStatus();
    }
  }
  for (std::string_view no : {"0", "false", "no", "off"}) {
    if (json_value == no) {
      json = false;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(kLogJsonVariable, "=\"", absl::string_view(json_value.data(), json_value.size()),
                   "\": want 1, true, yes, on, 0, false, no or off"));
}

}  // namespace modelcache
