#pragma once
// SplitOn("a/b//c", '/') -> {"a", "b", "", "c"}: std::string_view parts, empty ones kept.
// absl::StrSplit would do, but Debian's Abseil gives absl::string_view, which is not
// std::string_view there (see common/concat.h).
#include <string_view>
#include <vector>

namespace modelcache {

inline std::vector<std::string_view> SplitOn(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace modelcache
