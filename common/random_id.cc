#include "common/random_id.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <random>

namespace modelcache {

std::string RandomHexId128() {
  uint8_t bytes[16];
  size_t filled = 0;
  while (filled < sizeof(bytes)) {
    ssize_t got = ::getrandom(bytes + filled, sizeof(bytes) - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      break;
    }
    filled += static_cast<size_t>(got);
  }
  // getrandom only fails on kernels older than 3.17; random_device still reads /dev/urandom.
  if (filled < sizeof(bytes)) {
    std::random_device random;
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(32);
  for (uint8_t byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

bool IsHexId128(std::string_view text) {
  if (text.size() != 32) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace modelcache
