#include "agent/coordination/saved_policy.h"

#include <gtest/gtest.h>

#include "agent/coordination/caching_policy.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

TEST(SavedPolicy, MissingFileMeansNoSavedPolicy) {
  testing::TempDir dir;
  absl::StatusOr<std::optional<v1::CachingPolicy>> loaded =
      LoadSavedPolicy(dir.Path() / "none" / kSavedPolicyFileName);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->has_value());
}

TEST(SavedPolicy, SavedPolicyRefusesWhatTheCoordinatorDisabled) {
  testing::TempDir dir;
  const auto path = dir.Path() / "agents" / "node-a" / kSavedPolicyFileName;
  v1::CachingPolicy policy;
  policy.set_default_enabled(false);
  v1::CachingRule* rule = policy.add_rules();
  rule->set_name("llama");
  rule->set_enabled(true);
  ASSERT_TRUE(SavePolicy(path, policy).ok());

  absl::StatusOr<std::optional<v1::CachingPolicy>> loaded = LoadSavedPolicy(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  // What an agent starting without its coordinator applies.
  CachingPolicyHolder holder(/*allow_without_policy=*/true);
  holder.Set(**loaded);
  EXPECT_TRUE(holder.Allowed("llama", "1"));
  EXPECT_FALSE(holder.Allowed("bert", "1"));
}

TEST(SavedPolicy, ANewerPolicyReplacesTheSavedOne) {
  testing::TempDir dir;
  const auto path = dir.Path() / kSavedPolicyFileName;
  v1::CachingPolicy first;
  first.set_default_enabled(true);
  ASSERT_TRUE(SavePolicy(path, first).ok());
  v1::CachingPolicy second;  // default disabled, no rules: serialises to nothing
  ASSERT_TRUE(SavePolicy(path, second).ok());
  absl::StatusOr<std::optional<v1::CachingPolicy>> loaded = LoadSavedPolicy(path);
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(loaded->has_value());
  EXPECT_FALSE((*loaded)->default_enabled());
}

TEST(SavedPolicy, GarbageIsDataLossNamingTheFile) {
  testing::TempDir dir;
  const auto path = dir.Path() / kSavedPolicyFileName;
  ASSERT_TRUE(testing::WriteTestFile(path, "\xff\xff\xff not a policy"));
  absl::StatusOr<std::optional<v1::CachingPolicy>> loaded = LoadSavedPolicy(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find(path.string()), absl::string_view::npos);
}

}  // namespace
}  // namespace modelcache
