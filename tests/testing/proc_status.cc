#include "tests/testing/proc_status.h"

#include <fstream>
#include <string>

namespace modelcache::testing {

std::optional<uint64_t> ProcStatusBytes(pid_t pid, std::string_view field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  const std::string prefix = std::string(field) + ":";
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    try {
      return std::stoull(line.substr(prefix.size())) * 1024;
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace modelcache::testing
