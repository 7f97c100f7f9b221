#include "common/names.h"

#include <gtest/gtest.h>

#include <string>

namespace modelcache {
namespace {

TEST(Names, AcceptsTypicalNamesAndVersions) {
  for (std::string_view name : {"llama-3", "Qwen2.5_7B", "a", "v1.2.3", "x..y", "9"}) {
    EXPECT_TRUE(ValidateModelName(name).ok()) << name;
    EXPECT_TRUE(ValidateModelVersion(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateModelName(std::string(kMaxNameLength, 'a')).ok());
}

TEST(Names, RejectsUnsafeNames) {
  const std::string too_long(kMaxNameLength + 1, 'a');
  const std::string with_nul("a\0b", 3);
  for (std::string_view name :
       {std::string_view(""), std::string_view("."), std::string_view(".."),
        std::string_view(".hidden"), std::string_view("a/b"), std::string_view("a\\b"),
        std::string_view("../x"), std::string_view(too_long), std::string_view("x y"),
        std::string_view(with_nul)}) {
    absl::Status status = ValidateModelName(name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(ValidateModelVersion(name).code(), absl::StatusCode::kInvalidArgument) << name;
  }
}

TEST(Names, ErrorNamesTheValue) {
  absl::Status status = ValidateModelName("bad name");
  EXPECT_NE(std::string(status.message()).find("\"bad name\""), std::string::npos)
      << status.message();
  EXPECT_NE(std::string(ValidateModelVersion("").message()).find("version"), std::string::npos);
}

TEST(Names, NulIsShownEscaped) {
  absl::Status status = ValidateModelName(std::string_view("a\0b", 3));
  EXPECT_NE(std::string(status.message()).find("\\x00"), std::string::npos) << status.message();
}

TEST(RelativeFilePath, AcceptsNestedPaths) {
  for (std::string_view path : {"config.json", "weights/00001.safetensors", "a/b/c/d.bin",
                                "tokenizer/.gitattributes", "a..b/c"}) {
    EXPECT_TRUE(ValidateRelativeFilePath(path).ok()) << path;
  }
  std::string longest(kMaxRelativePathLength, 'a');
  for (size_t i = 200; i < longest.size(); i += 200) longest[i] = '/';
  EXPECT_TRUE(ValidateRelativeFilePath(longest).ok());
}

TEST(RelativeFilePath, RejectsUnsafePaths) {
  std::string too_long(kMaxRelativePathLength + 1, 'a');
  for (size_t i = 200; i < too_long.size(); i += 200) too_long[i] = '/';
  const std::string with_nul("a\0b", 3);
  for (std::string_view path :
       {std::string_view("/abs"), std::string_view("a/../b"), std::string_view("a//b"),
        std::string_view("./a"), std::string_view(""), std::string_view("a/"),
        std::string_view(".modelcache-manifest.json"), std::string_view("x/.modelcache-access"),
        std::string_view(too_long), std::string_view(with_nul), std::string_view(".."),
        std::string_view("a/\n")}) {
    EXPECT_EQ(ValidateRelativeFilePath(path).code(), absl::StatusCode::kInvalidArgument) << path;
  }
}

TEST(RelativeFilePath, RejectsOverlongComponent) {
  EXPECT_TRUE(ValidateRelativeFilePath(std::string(255, 'a')).ok());
  EXPECT_FALSE(ValidateRelativeFilePath(std::string(256, 'a')).ok());
}

}  // namespace
}  // namespace modelcache
