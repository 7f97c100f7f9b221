#include "common/yaml_fields.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace modelcache {
namespace {

using ::testing::HasSubstr;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(YamlFields, ADocumentWithoutRepeatsLoads) {
  absl::StatusOr<YAML::Node> root = LoadConfigYaml("a: 1\nb:\n  c: 2\n  d: [x, y]\n");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ((*root)["b"]["c"].Scalar(), "2");
  absl::StatusOr<YAML::Node> empty = LoadConfigYaml("");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->IsNull());
}

TEST(YamlFields, ADuplicateTopLevelKeyIsRefusedWithBothLines) {
  absl::StatusOr<YAML::Node> root =
      LoadConfigYaml("coordinator:\n  listen: a:1\nother: 2\ncoordinator:\n  listen: b:2\n");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(root.status()), HasSubstr("line 4: coordinator: duplicate key (first at line 1)"));
}

TEST(YamlFields, ADuplicateNestedKeyIsRefusedWithItsPath) {
  absl::StatusOr<YAML::Node> root =
      LoadConfigYaml("coordinator:\n  tokensFile: /etc/tokens\n  listen: a:1\n  tokensFile: \"\"\n");
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(Message(root.status()),
              HasSubstr("line 4: coordinator.tokensFile: duplicate key (first at line 2)"));
}

TEST(YamlFields, QuotingOrFlowStyleDoesNotHideADuplicate) {
  absl::StatusOr<YAML::Node> quoted = LoadConfigYaml("\"tokensFile\": a\ntokensFile: b\n");
  EXPECT_THAT(Message(quoted.status()), HasSubstr("tokensFile: duplicate key"));
  absl::StatusOr<YAML::Node> flow = LoadConfigYaml("tls: {cert: a.pem, key: k, cert: b.pem}\n");
  EXPECT_THAT(Message(flow.status()), HasSubstr("line 1: tls.cert: duplicate key"));
  absl::StatusOr<YAML::Node> in_list = LoadConfigYaml("items:\n  - {a: 1, a: 2}\n");
  EXPECT_THAT(Message(in_list.status()), HasSubstr("items[0].a: duplicate key"));
}

TEST(YamlFields, TheSameKeyInDifferentMapsIsFine) {
  absl::StatusOr<YAML::Node> root = LoadConfigYaml("a: {level: 1}\nb: {level: 2}\n");
  EXPECT_TRUE(root.ok()) << root.status();
}

TEST(YamlFields, ComplexKeysAndSelfReferringAliasesAreRefused) {
  absl::StatusOr<YAML::Node> complex_key = LoadConfigYaml("? [a, b]\n: 1\n");
  EXPECT_THAT(Message(complex_key.status()), HasSubstr("keys must be plain names"));
  absl::StatusOr<YAML::Node> loop = LoadConfigYaml("a: &x [ *x ]\n");
  ASSERT_FALSE(loop.ok());
  EXPECT_THAT(Message(loop.status()), HasSubstr("nested deeper than"));
  absl::StatusOr<YAML::Node> bad = LoadConfigYaml("a: [1, 2\n");
  EXPECT_THAT(Message(bad.status()), HasSubstr("not valid YAML"));
}

TEST(YamlFields, AliasesThatMultiplyAreRefused) {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level < 8; ++level) {
    text += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int copy = 0; copy < 10; ++copy) text += (copy ? ", *a" : "*a") + std::to_string(level - 1);
    text += "]\n";
  }
  absl::StatusOr<YAML::Node> root = LoadConfigYaml(text);
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(Message(root.status()), HasSubstr("more than"));
}

TEST(YamlFields, ForEachFieldVisitsInOrderAndPutsTheKeyLineOnErrors) {
  absl::StatusOr<YAML::Node> root = LoadConfigYaml("first: 1\nblock:\n  inner: 2\n  bad: 3\n");
  ASSERT_TRUE(root.ok()) << root.status();
  std::vector<std::string> paths;
  absl::Status status = ForEachField("", *root, [&](const std::string& path, const std::string& key,
                                                    const YAML::Node& value) -> absl::Status {
    paths.push_back(path);
    if (key != "block") return absl::OkStatus();
    return ForEachField(path, value, [&](const std::string& inner_path, const std::string& inner_key,
                                         const YAML::Node&) -> absl::Status {
      paths.push_back(inner_path);
      if (inner_key == "bad") return UnknownKeyError(inner_path, {"inner"});
      return absl::OkStatus();
    });
  });
  EXPECT_EQ(paths, (std::vector<std::string>{"first", "block", "block.inner", "block.bad"}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  // The inner key's line, once: the outer map does not add the line of "block".
  EXPECT_EQ(Message(status), "line 4: block.bad: unknown key (known: inner)");
}

TEST(YamlFields, ForEachFieldTakesNullAsEmptyAndRefusesAScalar) {
  absl::StatusOr<YAML::Node> root = LoadConfigYaml("empty:\nscalar: 3\n");
  ASSERT_TRUE(root.ok()) << root.status();
  int calls = 0;
  auto count = [&](const std::string&, const std::string&, const YAML::Node&) {
    ++calls;
    return absl::OkStatus();
  };
  EXPECT_TRUE(ForEachField("empty", (*root)["empty"], count).ok());
  EXPECT_TRUE(ForEachField("missing", (*root)["missing"], count).ok());
  absl::Status scalar = ForEachField("scalar", (*root)["scalar"], count);
  EXPECT_EQ(Message(scalar), "line 2: scalar: want a map of settings");
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace modelcache
