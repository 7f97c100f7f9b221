#include "common/environment.h"

#include <unistd.h>

#include <climits>

extern char** environ;

namespace modelcache {

ProcessEnvironment ProcessEnvironment::FromProcess() {
  ProcessEnvironment environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    environment.variables.emplace(std::string(text.substr(0, equals)),
                                  std::string(text.substr(equals + 1)));
  }
  char hostname[HOST_NAME_MAX + 1] = {};
  if (gethostname(hostname, sizeof(hostname) - 1) == 0) environment.hostname = hostname;
  return environment;
}

std::string ProcessEnvironment::Get(std::string_view name) const {
  auto found = variables.find(std::string(name));
  return found == variables.end() ? std::string() : found->second;
}

const char* ProcessEnvironment::Lookup(const char* name) const {
  auto found = variables.find(name);
  return found == variables.end() ? nullptr : found->second.c_str();
}

}  // namespace modelcache
