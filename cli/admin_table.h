#pragma once
// Plain-text tables for people: a header row and left-aligned columns two spaces apart.
#include <string>
#include <vector>

#include <google/protobuf/message.h>

namespace modelcache::cli {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : rows_{std::move(header)} {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "3m ago", "never" (0) for a unix-millisecond time.
std::string AgoText(int64_t unix_ms);
// Protobuf's JSON mapping of `message`, indented, field names as in the .proto.
std::string ToJson(const google::protobuf::Message& message);

}  // namespace modelcache::cli
