#pragma once
// The process environment, captured once by a daemon's main (or made up by a test) and handed
// to its config module: no other code reads the environment (STYLE.md, Configuration).
#include <map>
#include <string>
#include <string_view>

namespace modelcache {

struct ProcessEnvironment {
  std::map<std::string, std::string> variables;
  std::string hostname;

  static ProcessEnvironment FromProcess();
  std::string Get(std::string_view name) const;  // "" when unset
  const char* Lookup(const char* name) const;     // nullptr when unset (getenv's shape)
};

}  // namespace modelcache
