#include "common/yaml_fields.h"

#include <charconv>
#include <cstddef>
#include <system_error>
#include <utility>
#include <map>

#include "common/duration.h"
#include "common/quantity.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// Far deeper than any configuration nests (three levels); only an alias that refers to its
// own ancestor gets there, and the walk must end.
constexpr int kMaxDepth = 32;
// Aliases can multiply a small file into billions of nodes ("billion laughs").
constexpr size_t kMaxNodes = 100'000;

// "line 12: ": how an error names the line of its key; an error that starts so already
// names the innermost one, and outer maps do not add theirs.
bool NamesALine(std::string_view message) {
  if (!message.starts_with("line ")) return false;
  message.remove_prefix(5);
  size_t digits = 0;
  while (digits < message.size() && message[digits] >= '0' && message[digits] <= '9') ++digits;
  return digits > 0 && message.substr(digits).starts_with(": ");
}

std::string Join(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : fmt::format("{}.{}", prefix, key);
}

std::string_view Shown(std::string_view path) { return path.empty() ? "config" : path; }

class DuplicateKeyCheck {
 public:
  absl::Status Check(const YAML::Node& node, const std::string& path, int depth) {
    if (++visited_ > kMaxNodes) {
      return absl::InvalidArgumentError(fmt::format(
          "line {}: {}: more than {} values (aliases that repeat each other?)", YamlLine(node),
          Shown(path), kMaxNodes));
    }
    if (depth > kMaxDepth) {
      return absl::InvalidArgumentError(
          fmt::format("line {}: {}: nested deeper than {} levels (an alias that refers to itself?)",
                      YamlLine(node), Shown(path), kMaxDepth));
    }
    if (node.IsSequence()) {
      size_t index = 0;
      for (const YAML::Node& item : node) {
        RETURN_IF_ERROR(Check(item, fmt::format("{}[{}]", Shown(path), index++), depth + 1));
      }
      return absl::OkStatus();
    }
    if (!node.IsMap()) return absl::OkStatus();
    std::map<std::string, int> first_line;
    for (const auto& item : node) {
      if (!item.first.IsScalar()) {
        return absl::InvalidArgumentError(fmt::format(
            "line {}: {}: keys must be plain names, not lists or maps", YamlLine(item.first),
            Shown(path)));
      }
      const std::string& key = item.first.Scalar();
      const std::string child = Join(path, key);
      auto [seen, inserted] = first_line.emplace(key, YamlLine(item.first));
      if (!inserted) {
        return absl::InvalidArgumentError(
            fmt::format("line {}: {}: duplicate key (first at line {}); each key may appear once",
                        YamlLine(item.first), child, seen->second));
      }
      RETURN_IF_ERROR(Check(item.second, child, depth + 1));
    }
    return absl::OkStatus();
  }

 private:
  size_t visited_ = 0;
};

absl::Status WithLine(const absl::Status& status, const YAML::Node& key) {
  const std::string message(status.message());
  if (status.ok() || NamesALine(message)) return status;
  return absl::Status(status.code(), fmt::format("line {}: {}", YamlLine(key), message));
}

}  // namespace

absl::StatusOr<YAML::Node> LoadConfigYaml(std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
    DuplicateKeyCheck check;
    RETURN_IF_ERROR(check.Check(root, "", 0));
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(fmt::format("config: not valid YAML: {}", error.what()));
  }
  return root;
}

int YamlLine(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

absl::Status ForEachField(std::string_view prefix, const YAML::Node& node, FieldFn apply) {
  if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) {
    return WithLine(absl::InvalidArgumentError(
                        fmt::format("{}: want a map of settings", Shown(prefix))),
                    node);
  }
  // yaml-cpp throws on misuse (a conversion the callback attempts); none may escape.
  try {
    for (const auto& item : node) {
      if (!item.first.IsScalar()) {
        return WithLine(absl::InvalidArgumentError(fmt::format(
                            "{}: keys must be plain names, not lists or maps", Shown(prefix))),
                        item.first);
      }
      const std::string& key = item.first.Scalar();
      RETURN_IF_ERROR(WithLine(apply(Join(prefix, key), key, item.second), item.first));
    }
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", Shown(prefix), error.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> YamlScalar(std::string_view path, const YAML::Node& node) {
  if (node.IsNull()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: no value; write \"\" for an empty one", path));
  }
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: want a single value, not a list or map", path));
  }
  return node.Scalar();
}

absl::StatusOr<bool> YamlBool(std::string_view path, const YAML::Node& node) {
  // Not ASSIGN_OR_RETURN: g++ 12 gives a false -Wmaybe-uninitialized for it here.
  absl::StatusOr<std::string> scalar = YamlScalar(path, node);
  if (!scalar.ok()) return scalar.status();
  const std::string& text = *scalar;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return InvalidValueError(path, text, "want true or false");
}

absl::StatusOr<uint64_t> YamlInteger(std::string_view path, const YAML::Node& node, uint64_t min,
                                     uint64_t max) {
  ASSIGN_OR_RETURN(std::string text, YamlScalar(path, node));
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return InvalidValueError(path, text, "want a whole number");
  }
  if (value < min || value > max) {
    return InvalidValueError(path, text, fmt::format("want {}..{}", min, max));
  }
  return value;
}

absl::StatusOr<std::chrono::seconds> YamlDuration(std::string_view path, const YAML::Node& node,
                                                  bool zero_allowed) {
  ASSIGN_OR_RETURN(std::string text, YamlScalar(path, node));
  absl::StatusOr<std::chrono::seconds> duration = ParseDuration(text);
  if (!duration.ok()) {
    return InvalidValueError(path, text, std::string(duration.status().message()));
  }
  if (duration->count() == 0 && !zero_allowed) {
    return InvalidValueError(path, text, "must be greater than zero");
  }
  return *duration;
}

absl::StatusOr<uint64_t> YamlQuantity(std::string_view path, const YAML::Node& node) {
  ASSIGN_OR_RETURN(std::string text, YamlScalar(path, node));
  absl::StatusOr<uint64_t> bytes = ParseQuantity(text);
  if (!bytes.ok()) return InvalidValueError(path, text, std::string(bytes.status().message()));
  return *bytes;
}

absl::StatusOr<std::vector<std::string>> YamlScalarList(std::string_view path,
                                                        const YAML::Node& node) {
  std::vector<std::string> items;
  if (!node.IsDefined() || node.IsNull()) return items;
  if (!node.IsSequence()) return absl::InvalidArgumentError(fmt::format("{}: want a list", path));
  for (const YAML::Node& item : node) {
    ASSIGN_OR_RETURN(std::string text, YamlScalar(path, item));
    items.push_back(std::move(text));
  }
  return items;
}

absl::Status InvalidValueError(std::string_view path, std::string_view value, std::string_view why) {
  return absl::InvalidArgumentError(fmt::format("{}: invalid value \"{}\": {}", path, value, why));
}

absl::Status UnknownKeyError(std::string_view path, std::initializer_list<std::string_view> known) {
  return absl::InvalidArgumentError(
      fmt::format("{}: unknown key (known: {})", path, fmt::join(known, ", ")));
}

}  // namespace modelcache
