#pragma once
// fmt/spdlog cannot format absl::Status or absl::string_view (Debian's Abseil does not alias
// std::string_view); these formatters are the one place that converts.
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/fmt/fmt.h"

template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(absl::string_view value, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(value.data(), value.size()), ctx);
  }
};

template <>
struct fmt::formatter<absl::Status> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const absl::Status& status, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(status.ToString(), ctx);
  }
};
