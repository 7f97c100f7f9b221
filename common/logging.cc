#include "common/logging.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

void AppendJsonEscaped(std::string_view text, spdlog::memory_buf_t& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : text) {
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

// "%*" in the JSON pattern: the message, escaped so that quotes or newlines in it cannot
// break the one-object-per-line format.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendJsonEscaped(std::string_view(message.payload.data(), message.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
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
                     PatternLiteral(JsonEscaped(component)), R"(","msg":"%*"})"));
  } else {
    formatter->set_pattern(
        absl::StrCat("%Y-%m-%dT%H:%M:%S.%eZ %l ", PatternLiteral(component), " %v"));
  }

  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(std::move(formatter));
  auto logger = std::make_shared<spdlog::logger>(component, std::move(sink));
  logger->set_level(*level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

}  // namespace modelcache
