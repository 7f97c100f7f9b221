#include "cli/cli_context.h"

#include <cctype>

#include "agent/config.h"  // kDefaultSocketPath

namespace modelcache::cli {

std::string ResolveSocketPath(const std::string& flag_value, const ProcessEnvironment& environment) {
  if (!flag_value.empty()) return flag_value;
  std::string from_environment = environment.Get("MODELCACHE_SOCKET");
  if (!from_environment.empty()) return from_environment;
  return std::string(kDefaultSocketPath);
}

bool IsTruthy(std::string_view value) {
  std::string lower;
  for (char c : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "true" || lower == "1" || lower == "yes";
}

}  // namespace modelcache::cli
