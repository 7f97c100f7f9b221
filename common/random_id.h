#pragma once
// Random identifiers that stay unique across the agents and nodes sharing a volume.
#include <string>
#include <string_view>

namespace modelcache {

// 128 bits from the kernel's CSPRNG (getrandom), as 32 lowercase hex digits.
std::string RandomHexId128();

// True for exactly 32 lowercase hex digits (what RandomHexId128 returns).
bool IsHexId128(std::string_view text);

}  // namespace modelcache
