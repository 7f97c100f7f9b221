#pragma once
// key=value fields on log lines, so that one event reads the same in every module and a JSON
// log turns the fields into JSON keys:
//
//   spdlog::info("fill finished {}", LogFields().Add("model", name).Add("bytes", bytes));
//   -> "fill finished model=llama bytes=1024"
//   -> {"msg":"fill finished","model":"llama","bytes":1024}   (log.json: true)
//
// Keys are [a-z_][a-z0-9_]*. A value with a space, a quote, '=' or a control character, bytes
// that are not UTF-8, or an empty one, is written in double quotes with \" \\ \n \r \t escapes
// and \xNN for other control characters and for each byte that is not UTF-8, so a line is
// always valid UTF-8. A value longer than kMaxLoggedValueBytes (common/safe_text.h, 4096) is
// cut there and ends in "...[cut: N bytes in all]".
// The usual keys: model, version, node, volume, path, source, bytes, duration_ms, command,
// reason, error (what failed and why), next (what happens now). Every WARN, ERROR and CRITICAL
// line is "<constant message> {}" with fields that include error and next; the LogLines unit
// test (tests/repository/log_lines_test.cc) checks the sources for it.
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

class LogFields {
 public:
  LogFields& Add(std::string_view key, std::string_view value);
  LogFields& Add(std::string_view key, const std::string& value) {
    return Add(key, std::string_view(value));
  }
  LogFields& Add(std::string_view key, const char* value) {
    return Add(key, std::string_view(value));
  }
  template <std::integral T>
  LogFields& Add(std::string_view key, T value) {
    return Add(key, std::string_view(fmt::format("{}", value)));
  }
  // error=<code: message>.
  LogFields& Add(std::string_view key, const absl::Status& status);
  // Whole milliseconds: duration_ms=<n>.
  LogFields& AddMillis(std::string_view key, double seconds);

  const std::string& Text() const { return text_; }

 private:
  std::string text_;
};

// A log message split into its text and its trailing key=value fields (values unquoted).
// A message without a well-formed tail of fields is all text.
struct SplitLogMessage {
  std::string_view text;
  std::vector<std::pair<std::string, std::string>> fields;
};
SplitLogMessage SplitLogFields(std::string_view message);

}  // namespace modelcache

template <>
struct fmt::formatter<modelcache::LogFields> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const modelcache::LogFields& fields, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(fields.Text(), ctx);
  }
};
