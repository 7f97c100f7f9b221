#include "agent/source/aws_credentials.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

constexpr std::string_view kCredentialsFile = R"(# comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

[prod]
aws_access_key_id=AKIAPROD
aws_secret_access_key=prod-secret
aws_session_token = prod-token
; another comment
[profile staging]
aws_access_key_id = AKIASTAGING
aws_secret_access_key = staging/secret+with=equals
[broken]
aws_access_key_id = AKIABROKEN
)";

TEST(AwsCredentials, EnvironmentWinsOverFile) {
  auto credentials = ResolveAwsCredentials(
      {{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", "env-secret"},
       {"AWS_SESSION_TOKEN", "env-token"}, {"AWS_PROFILE", "prod"}},
      kCredentialsFile, "");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key_id, "AKIAENV");
  EXPECT_EQ(credentials->secret_access_key, "env-secret");
  EXPECT_EQ(credentials->session_token, "env-token");
  EXPECT_FALSE(credentials->Anonymous());
}

TEST(AwsCredentials, DefaultProfileFromFile) {
  auto credentials = ResolveAwsCredentials({}, kCredentialsFile, "");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key_id, "AKIADEFAULT");
  EXPECT_EQ(credentials->secret_access_key, "default-secret");
  EXPECT_EQ(credentials->session_token, "");
}

TEST(AwsCredentials, AwsProfileSelectsSection) {
  auto credentials = ResolveAwsCredentials({{"AWS_PROFILE", "prod"}}, kCredentialsFile, "");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key_id, "AKIAPROD");
  EXPECT_EQ(credentials->secret_access_key, "prod-secret");
  EXPECT_EQ(credentials->session_token, "prod-token");
}

TEST(AwsCredentials, ProfileArgumentWinsOverAwsProfileAndAcceptsConfigStyleHeader) {
  auto credentials = ResolveAwsCredentials({{"AWS_PROFILE", "prod"}}, kCredentialsFile, "staging");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key_id, "AKIASTAGING");
  EXPECT_EQ(credentials->secret_access_key, "staging/secret+with=equals");
}

TEST(AwsCredentials, NothingConfiguredIsAnonymous) {
  auto credentials = ResolveAwsCredentials({{"HOME", "/root"}}, "", "");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_TRUE(credentials->Anonymous());
  auto no_default = ResolveAwsCredentials({}, "[prod]\naws_access_key_id=A\naws_secret_access_key=B\n", "");
  ASSERT_TRUE(no_default.ok()) << no_default.status();
  EXPECT_TRUE(no_default->Anonymous());
}

TEST(AwsCredentials, KeyWithoutSecretIsRejectedWithoutLeakingValues) {
  auto from_env = ResolveAwsCredentials({{"AWS_ACCESS_KEY_ID", "AKIAENV"}}, kCredentialsFile, "");
  EXPECT_EQ(from_env.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(from_env.status().message().find("AWS_SECRET_ACCESS_KEY"), absl::string_view::npos);

  auto secret_only = ResolveAwsCredentials({{"AWS_SECRET_ACCESS_KEY", "s3cr3t"}}, "", "");
  EXPECT_EQ(secret_only.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(secret_only.status().message().find("s3cr3t"), absl::string_view::npos);

  auto from_file = ResolveAwsCredentials({}, kCredentialsFile, "broken");
  EXPECT_EQ(from_file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(from_file.status().message().find("broken"), absl::string_view::npos);
}

TEST(AwsCredentials, ExplicitMissingProfileIsAnError) {
  auto credentials = ResolveAwsCredentials({{"AWS_PROFILE", "nope"}}, kCredentialsFile, "");
  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(credentials.status().message().find("nope"), absl::string_view::npos);
}

TEST(AwsCredentials, CrlfLinesAreTrimmed) {
  auto credentials = ResolveAwsCredentials(
      {}, "[default]\r\naws_access_key_id = AKIA\r\naws_secret_access_key = secret\r\n", "");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key_id, "AKIA");
  EXPECT_EQ(credentials->secret_access_key, "secret");
}

}  // namespace
}  // namespace modelcache
