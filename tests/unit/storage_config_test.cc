#include "common/storage_config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace modelcache {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

TEST(StorageConfig, MissingBlockGivesDefaults) {
  absl::StatusOr<StorageConfig> config = ParseStorageConfigYaml("other: 1\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->enabled);
  EXPECT_EQ(config->storage_size_bytes, 0u);
  EXPECT_FALSE(config->bypass_storage_check);
  EXPECT_EQ(config->check_unused_every, hours(1));
  EXPECT_EQ(config->purge_unused_after, hours(7 * 24));
  EXPECT_TRUE(ParseStorageConfigYaml("").ok());
}

TEST(StorageConfig, ParsesEveryKey) {
  absl::StatusOr<StorageConfig> config = ParseStorageConfigYaml(R"(
modelsCacheStorage:
  enabled: true
  storageSize: 300Gi
  storageClassName: nfs-csi
  pvcNameSuffix: models
  bypassStorageCheck: true
  checkUnusedCachedModelsEvery: 30m
  purgeUnusedCachedModelsAfter: 2w
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->enabled);
  EXPECT_EQ(config->storage_size_bytes, 300ull << 30);
  EXPECT_EQ(config->storage_size_text, "300Gi");
  EXPECT_EQ(config->storage_class_name, "nfs-csi");
  EXPECT_EQ(config->pvc_name_suffix, "models");
  EXPECT_TRUE(config->bypass_storage_check);
  EXPECT_EQ(config->check_unused_every, seconds(1800));
  EXPECT_EQ(config->purge_unused_after, hours(14 * 24));
}

TEST(StorageConfig, ParsesANodeDirectly) {
  YAML::Node block = YAML::Load("{enabled: false, storageSize: 1Ti}");
  absl::StatusOr<StorageConfig> config = ParseStorageConfig(block);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->enabled);
  EXPECT_EQ(config->storage_size_bytes, 1ull << 40);
}

void ExpectRejected(std::string_view yaml, std::string_view key, std::string_view value) {
  absl::StatusOr<StorageConfig> config = ParseStorageConfigYaml(yaml);
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
  std::string message(config.status().message());
  EXPECT_NE(message.find(std::string(key)), std::string::npos) << message;
  EXPECT_NE(message.find(std::string(value)), std::string::npos) << message;
}

TEST(StorageConfig, BadValuesNameKeyAndValue) {
  ExpectRejected("modelsCacheStorage: {storageSize: 12Qi}", "modelsCacheStorage.storageSize",
                 "12Qi");
  ExpectRejected("modelsCacheStorage: {enabled: maybe}", "modelsCacheStorage.enabled", "maybe");
  ExpectRejected("modelsCacheStorage: {bypassStorageCheck: 1}",
                 "modelsCacheStorage.bypassStorageCheck", "1");
  ExpectRejected("modelsCacheStorage: {checkUnusedCachedModelsEvery: 10}",
                 "modelsCacheStorage.checkUnusedCachedModelsEvery", "10");
  ExpectRejected("modelsCacheStorage: {purgeUnusedCachedModelsAfter: 0s}",
                 "modelsCacheStorage.purgeUnusedCachedModelsAfter", "0s");
}

TEST(StorageConfig, UnknownKeyIsNamed) {
  ExpectRejected("modelsCacheStorage: {storagesize: 1Gi}", "modelsCacheStorage.storagesize",
                 "unknown key");
}

TEST(StorageConfig, NonMapBlockAndBrokenYamlAreRejected) {
  EXPECT_EQ(ParseStorageConfigYaml("modelsCacheStorage: [1, 2]").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseStorageConfigYaml("modelsCacheStorage: {enabled: [true}").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ParseStorageConfigYaml("modelsCacheStorage: {storageClassName: {a: 1}}").status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelcache
