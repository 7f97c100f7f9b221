#pragma once
// Concat("a", std::string_view, 42, absl::string_view, ...): absl::StrCat for every type fmt
// formats. Debian's Abseil does not alias std::string_view, so absl::StrCat refuses it.
#include <iterator>
#include <string>

#include "common/status_format.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

template <typename... Parts>
std::string Concat(const Parts&... parts) {
  std::string out;
  (fmt::format_to(std::back_inserter(out), "{}", parts), ...);
  return out;
}

}  // namespace modelcache
