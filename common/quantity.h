#pragma once
// Kubernetes resource quantities for sizes: "300Gi", "1Ti", "500M", "1e3", "123".
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace modelcache {

// Bytes for a quantity with binary (Ki Mi Gi Ti Pi Ei) or decimal (k M G T P E) suffix, or
// none. Fractions are allowed when the result is whole bytes ("1.5Gi"). INVALID_ARGUMENT
// names the value for an unknown suffix, a negative value or an overflow.
absl::StatusOr<uint64_t> ParseQuantity(std::string_view text);

// "1.5 GiB"-style text for people (logs, CLI tables).
std::string FormatBytes(uint64_t bytes);

}  // namespace modelcache
