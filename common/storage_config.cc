#include "common/storage_config.h"

#include <yaml-cpp/yaml.h>

#include "common/duration.h"
#include "common/quantity.h"
#include "common/status_macros.h"
#include "common/yaml_fields.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

constexpr std::string_view kBlockName = "modelsCacheStorage";

std::string KeyName(std::string_view key) { return fmt::format("{}.{}", kBlockName, key); }

absl::Status InvalidValue(std::string_view key, std::string_view value, std::string_view why) {
  return absl::InvalidArgumentError(
      fmt::format("{}: invalid value \"{}\": {}", KeyName(key), value, why));
}

absl::StatusOr<std::string> ScalarOf(std::string_view key, const YAML::Node& node) {
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(fmt::format("{}: want a scalar value", KeyName(key)));
  }
  return node.Scalar();
}

absl::StatusOr<bool> ParseBool(std::string_view key, const YAML::Node& node) {
  // Not ASSIGN_OR_RETURN: g++ 12 gives a false -Wmaybe-uninitialized for it here.
  absl::StatusOr<std::string> scalar = ScalarOf(key, node);
  if (!scalar.ok()) return scalar.status();
  const std::string& text = *scalar;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return InvalidValue(key, text, "want true or false");
}

absl::StatusOr<std::chrono::seconds> ParsePositiveDuration(std::string_view key,
                                                           const YAML::Node& node) {
  ASSIGN_OR_RETURN(std::string text, ScalarOf(key, node));
  absl::StatusOr<std::chrono::seconds> duration = ParseDuration(text);
  if (!duration.ok()) return InvalidValue(key, text, std::string(duration.status().message()));
  if (duration->count() == 0) return InvalidValue(key, text, "must be greater than zero");
  return *duration;
}

absl::Status ApplyKey(std::string_view key, const YAML::Node& value, StorageConfig& config) {
  if (key == "enabled") {
    ASSIGN_OR_RETURN(config.enabled, ParseBool(key, value));
  } else if (key == "storageSize") {
    ASSIGN_OR_RETURN(std::string text, ScalarOf(key, value));
    absl::StatusOr<uint64_t> bytes = ParseQuantity(text);
    if (!bytes.ok()) return InvalidValue(key, text, std::string(bytes.status().message()));
    config.storage_size_bytes = *bytes;
    config.storage_size_text = text;
  } else if (key == "storageClassName") {
    ASSIGN_OR_RETURN(config.storage_class_name, ScalarOf(key, value));
  } else if (key == "pvcNameSuffix") {
    ASSIGN_OR_RETURN(config.pvc_name_suffix, ScalarOf(key, value));
  } else if (key == "bypassStorageCheck") {
    ASSIGN_OR_RETURN(config.bypass_storage_check, ParseBool(key, value));
  } else if (key == "checkUnusedCachedModelsEvery") {
    ASSIGN_OR_RETURN(config.check_unused_every, ParsePositiveDuration(key, value));
  } else if (key == "purgeUnusedCachedModelsAfter") {
    ASSIGN_OR_RETURN(config.purge_unused_after, ParsePositiveDuration(key, value));
  } else {
    return absl::InvalidArgumentError(fmt::format(
        "{}: unknown key (want enabled, storageSize, storageClassName, pvcNameSuffix, "
        "bypassStorageCheck, checkUnusedCachedModelsEvery, purgeUnusedCachedModelsAfter)",
        KeyName(key)));
  }
  return absl::OkStatus();
}

absl::StatusOr<StorageConfig> ParseBlock(const YAML::Node& block) {
  StorageConfig config;
  RETURN_IF_ERROR(ForEachField(kBlockName, block,
                               [&](const std::string&, const std::string& key, const YAML::Node& value) {
                                 return ApplyKey(key, value, config);
                               }));
  return config;
}

}  // namespace

absl::StatusOr<StorageConfig> ParseStorageConfig(const YAML::Node& block) {
  // yaml-cpp reports problems by throwing; none may escape into callers that use Status.
  try {
    return ParseBlock(block);
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", kBlockName, error.what()));
  }
}

absl::StatusOr<StorageConfig> ParseStorageConfigYaml(std::string_view yaml_text) {
  try {
    ASSIGN_OR_RETURN(YAML::Node document, LoadConfigYaml(yaml_text));
    if (document.IsNull()) return StorageConfig{};
    if (!document.IsMap()) {
      return absl::InvalidArgumentError("configuration: want a map at the top level");
    }
    return ParseBlock(document[std::string(kBlockName)]);
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(fmt::format("configuration: {}", error.what()));
  }
}

}  // namespace modelcache
