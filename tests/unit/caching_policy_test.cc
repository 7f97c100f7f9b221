#include "agent/coordination/caching_policy.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

v1::CachingPolicy Policy(bool default_enabled) {
  v1::CachingPolicy policy;
  policy.set_default_enabled(default_enabled);
  auto add = [&](const char* name, const char* version, bool enabled) {
    v1::CachingRule* rule = policy.add_rules();
    rule->set_name(name);
    rule->set_version(version);
    rule->set_enabled(enabled);
  };
  add("llama", "", true);
  add("llama", "2", false);
  add("bert", "", false);
  add("bert", "7", true);
  return policy;
}

TEST(CachingPolicy, VersionRuleBeatsModelRuleBeatsDefault) {
  v1::CachingPolicy policy = Policy(false);
  EXPECT_TRUE(CachingAllowed(policy, "llama", "1"));   // inherits the model's setting
  EXPECT_FALSE(CachingAllowed(policy, "llama", "2"));  // overridden
  EXPECT_FALSE(CachingAllowed(policy, "bert", "1"));
  EXPECT_TRUE(CachingAllowed(policy, "bert", "7"));
  EXPECT_FALSE(CachingAllowed(policy, "unknown", "1"));  // default
  EXPECT_TRUE(CachingAllowed(Policy(true), "unknown", "1"));
}

TEST(CachingPolicy, HolderUsesFallbackUntilFirstPolicy) {
  CachingPolicyHolder holder(/*allow_without_policy=*/true);
  EXPECT_TRUE(holder.Allowed("bert", "1"));
  holder.Set(Policy(false));
  EXPECT_FALSE(holder.Allowed("bert", "1"));
  EXPECT_TRUE(holder.Allowed("llama", "1"));
}

TEST(CachingPolicy, RegistrySourcesAreLookedUpPerVersion) {
  CachingPolicyHolder holder(/*allow_without_policy=*/true);
  EXPECT_EQ(holder.LookupSource("llama", "1").state, RegistryLookup::State::kNotReceived);
  v1::CachingPolicy policy = Policy(true);
  policy.set_sources_included(true);
  v1::RegisteredSource* source = policy.add_sources();
  source->set_name("llama");
  source->set_version("1");
  source->set_source("s3://models/llama/1/");
  holder.Set(policy);
  RegistryLookup found = holder.LookupSource("llama", "1");
  EXPECT_EQ(found.state, RegistryLookup::State::kRegistered);
  EXPECT_EQ(found.source, "s3://models/llama/1/");
  EXPECT_EQ(holder.LookupSource("llama", "2").state, RegistryLookup::State::kUnregistered);
  // "llama" + "1" must not be confused with "llama1" + "" or any other split.
  EXPECT_EQ(holder.LookupSource("llama1", "").state, RegistryLookup::State::kUnregistered);
}

TEST(CachingPolicy, APolicyWithoutTheRegistryLeavesSourcesUnknown) {
  // Saved by an agent, or sent by a coordinator, from before sources were in the registry.
  CachingPolicyHolder holder(/*allow_without_policy=*/true);
  holder.Set(Policy(true));
  EXPECT_EQ(holder.LookupSource("llama", "1").state, RegistryLookup::State::kNotReceived);
  EXPECT_TRUE(holder.Allowed("llama", "1"));
}

}  // namespace
}  // namespace modelcache

namespace modelcache {
namespace {

TEST(CachingPolicyHolderCheck, WithACoordinatorNothingIsAllowedBeforeTheFirstPolicy) {
  CachingPolicyHolder holder(/*allow_without_policy=*/false);
  EXPECT_FALSE(holder.Known());
  absl::Status refused = holder.Check("m", "v1");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(refused.message()).find("no caching policy from the coordinator yet"),
            std::string::npos)
      << refused;
  v1::CachingPolicy policy;
  policy.set_default_enabled(false);
  v1::CachingRule* rule = policy.add_rules();
  rule->set_name("m");
  rule->set_enabled(true);
  holder.Set(policy);
  EXPECT_TRUE(holder.Known());
  EXPECT_TRUE(holder.Check("m", "v1").ok());
  absl::Status disabled = holder.Check("other", "v1");
  EXPECT_EQ(disabled.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(disabled.message()).find("caching disabled for model other@v1"),
            std::string::npos)
      << disabled;
}

TEST(CachingPolicyHolderCheck, WithoutACoordinatorEveryModelIsAllowed) {
  CachingPolicyHolder holder(/*allow_without_policy=*/true);
  EXPECT_TRUE(holder.Check("m", "v1").ok());
}

}  // namespace
}  // namespace modelcache
