#include "common/yaml_fields.h"

#include <cstddef>
#include <map>

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

absl::Status UnknownKeyError(std::string_view path, std::initializer_list<std::string_view> known) {
  return absl::InvalidArgumentError(
      fmt::format("{}: unknown key (known: {})", path, fmt::join(known, ", ")));
}

}  // namespace modelcache
