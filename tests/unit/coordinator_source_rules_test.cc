#include "coordinator/policy/source_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelcache {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(SourceRules, ASourceFallsUnderItsPrefixOnlyAtAPathBoundary) {
  EXPECT_TRUE(CheckSourcePrefix("llama", "v3", "s3://models/llama/v3/", "s3://models/llama/").ok());
  EXPECT_TRUE(CheckSourcePrefix("llama", "v3", "s3://models/llama/v3/", "s3://models/llama").ok());
  EXPECT_TRUE(CheckSourcePrefix("llama", "v3", "s3://models/llama/", "s3://models/llama/").ok());
  EXPECT_TRUE(CheckSourcePrefix("llama", "v3", "http://attacker/w.bin", "").ok());
  EXPECT_FALSE(
      CheckSourcePrefix("llama", "v3", "s3://models/llama-evil/v3/", "s3://models/llama").ok());
  EXPECT_FALSE(CheckSourcePrefix("llama", "v3", "s3://models/", "s3://models/llama/").ok());
}

TEST(SourceRules, AnEscapedSeparatorAfterAnHttpPrefixIsRefused) {
  const char* prefix = "https://models.example/llama/";
  for (const char* escaping : {"https://models.example/llama/x%2F..%2F..%2Fevil/w.bin",
                               "https://models.example/llama/x%2f..%2fevil/",
                               "https://models.example/llama/x%5C..%5Cevil/",
                               "https://models.example/llama/x\\..\\evil/"}) {
    absl::Status refused = CheckSourcePrefix("llama", "v3", escaping, prefix);
    ASSERT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << escaping;
    EXPECT_THAT(std::string(refused.message()),
                AllOf(HasSubstr("llama@v3"), HasSubstr(escaping), HasSubstr(prefix),
                      HasSubstr("%2F")));
  }
  // The query is not part of the path: a presigned URL's credential holds "%2F".
  EXPECT_TRUE(CheckSourcePrefix("llama", "v3",
                                "https://models.example/llama/w.bin?X-Amz-Credential=AK%2F2024",
                                prefix)
                  .ok());
  // An s3 key takes "%2F" as three characters of the key: it cannot leave the prefix.
  EXPECT_TRUE(CheckSourcePrefix("llama", "v3", "s3://models/llama/a%2Fb/", "s3://models/llama/").ok());
}

TEST(SourceRules, ARefusalNamesTheVersionTheSourceAndThePrefix) {
  absl::Status refused =
      CheckSourcePrefix("llama", "v3", "http://attacker.example/w.bin", "s3://models/llama/");
  ASSERT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()),
              AllOf(HasSubstr("llama@v3"), HasSubstr("http://attacker.example/w.bin"),
                    HasSubstr("s3://models/llama/"), HasSubstr("set-source-prefix")));
}

TEST(SourceRules, SetSourceWritesANewOrDifferentSourceUnderThePrefix) {
  SourceEntry none{std::nullopt, "s3://models/llama/"};
  EXPECT_EQ(*DecideSourceChange("llama", "v3", "s3://models/llama/v3/", none, SourceChange::kSet),
            true);
  SourceEntry same{"s3://models/llama/v3/", "s3://models/llama/"};
  EXPECT_EQ(*DecideSourceChange("llama", "v3", "s3://models/llama/v3/", same, SourceChange::kSet),
            false);
  EXPECT_EQ(*DecideSourceChange("llama", "v3", "s3://models/llama/v3b/", same, SourceChange::kSet),
            true);
  EXPECT_EQ(DecideSourceChange("llama", "v3", "s3://other/v3/", same, SourceChange::kSet)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(SourceRules, PrefetchRegistersOnlyWhenNoneIsRegistered) {
  SourceEntry none{std::nullopt, ""};
  EXPECT_EQ(*DecideSourceChange("m", "1", "http://h/m/", none, SourceChange::kRegisterOnly), true);
  SourceEntry registered{"http://h/m/", ""};
  EXPECT_EQ(*DecideSourceChange("m", "1", "http://h/m/", registered, SourceChange::kRegisterOnly),
            false);
  absl::StatusOr<bool> other =
      DecideSourceChange("m", "1", "http://attacker/m/", registered, SourceChange::kRegisterOnly);
  ASSERT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other.status().message()),
              AllOf(HasSubstr("m@1"), HasSubstr("http://attacker/m/"), HasSubstr("http://h/m/")));
}

}  // namespace
}  // namespace modelcache
