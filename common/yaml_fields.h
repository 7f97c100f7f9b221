#pragma once
// Reading the daemons' YAML configuration files so that no setting is lost in silence.
//
// yaml-cpp 0.7 keeps every copy of a key written twice in one map, and a lookup or a walk
// then takes one of them: `tokensFile: /etc/tokens` followed further down by `tokensFile: ""`
// (or a second `coordinator:` block) started the coordinator without authentication. Both
// daemons load their file with LoadConfigYaml, which refuses a key written twice in any map
// at any depth, and walk each map with ForEachField, which puts the line of the key on any
// error about it (an unknown key, a bad value).
#include <initializer_list>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace modelcache {

// Parses one configuration document. INVALID_ARGUMENT "config: not valid YAML: ..." when
// it does not parse; "line 9: coordinator.tokensFile: duplicate key (first at line 4); each
// key may appear once" when a map anywhere holds the same key twice; also for keys that are
// not plain scalars and for nesting beyond any configuration's (an alias that refers to
// itself). An empty document is a null node.
absl::StatusOr<YAML::Node> LoadConfigYaml(std::string_view yaml_text);

// The 1-based line of `node` in its document; 0 when yaml-cpp does not know it.
int YamlLine(const YAML::Node& node);

// One entry of a configuration map: `path` is "prefix.key" ("key" at the top level).
using FieldFn = absl::FunctionRef<absl::Status(const std::string& path, const std::string& key,
                                               const YAML::Node& value)>;

// Calls `apply` for each entry of the map `node`, in document order, and stops at the
// first error. A missing or null node is an empty map; any other non-map is INVALID_ARGUMENT
// "<prefix>: want a map of settings" (prefix "" reads "config"). An error `apply` returns
// for an entry is prefixed with "line N: ", N the line of its key, unless an inner
// ForEachField already gave it the line of a nested key.
absl::Status ForEachField(std::string_view prefix, const YAML::Node& node, FieldFn apply);

// INVALID_ARGUMENT "<path>: unknown key (known: a, b, c)". Returned from inside a
// ForEachField callback, it gets the key's line.
absl::Status UnknownKeyError(std::string_view path, std::initializer_list<std::string_view> known);

}  // namespace modelcache
