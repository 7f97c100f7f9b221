#include "cli/admin_table.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>

#include "common/duration.h"

namespace modelcache::cli {

std::string TextTable::Render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    text += line + "\n";
  }
  return text;
}

std::string AgoText(int64_t unix_ms) {
  if (unix_ms <= 0) return "never";
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t seconds = std::max<int64_t>(0, (now_ms - unix_ms) / 1000);
  // FormatDuration picks the largest exact unit; round to one for people.
  int64_t shown = seconds;
  for (int64_t unit : {604800L, 86400L, 3600L, 60L}) {
    if (seconds >= unit) {
      shown = seconds / unit * unit;
      break;
    }
  }
  return FormatDuration(std::chrono::seconds(shown)) + " ago";
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

}  // namespace modelcache::cli
