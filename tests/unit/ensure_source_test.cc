#include "agent/ensure_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelcache {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

v1::EnsureRequest Request(std::string source) {
  v1::EnsureRequest request;
  request.set_name("llama");
  request.set_version("v3");
  request.set_source(std::move(source));
  return request;
}

RegistryLookup Registered(std::string source) {
  return {RegistryLookup::State::kRegistered, std::move(source)};
}

std::string Message(const absl::StatusOr<std::string>& result) {
  return std::string(result.status().message());
}

TEST(ResolveEnsureSource, WithoutACoordinatorTheRequestNamesTheSource) {
  absl::StatusOr<std::string> source =
      ResolveEnsureSource(Request("http://h/m/"), RegistryLookup{});
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(*source, "http://h/m/");
}

TEST(ResolveEnsureSource, WithoutACoordinatorAnEmptySourceIsInvalidNamingTheField) {
  absl::StatusOr<std::string> source = ResolveEnsureSource(Request(""), RegistryLookup{});
  ASSERT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(source), AllOf(HasSubstr("llama@v3"), HasSubstr("EnsureRequest.source")));
}

TEST(ResolveEnsureSource, NoSourceAskedFillsFromTheRegisteredOne) {
  absl::StatusOr<std::string> source =
      ResolveEnsureSource(Request(""), Registered("s3://models/llama/v3/"));
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(*source, "s3://models/llama/v3/");
}

TEST(ResolveEnsureSource, TheRegisteredSourceInAnotherSpellingIsAccepted) {
  absl::StatusOr<std::string> source =
      ResolveEnsureSource(Request("HTTP://Origin.Example:80/m/"), Registered("http://origin.example/m/"));
  ASSERT_TRUE(source.ok()) << source.status();
  // The registry's spelling, so that every client's fill and hit name the same source.
  EXPECT_EQ(*source, "http://origin.example/m/");
}

TEST(ResolveEnsureSource, AnotherSourceIsRefusedNamingBoth) {
  absl::StatusOr<std::string> source = ResolveEnsureSource(
      Request("http://attacker.example/w.bin"), Registered("s3://models/llama/v3/"));
  ASSERT_EQ(source.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(source),
              AllOf(HasSubstr("llama@v3"), HasSubstr("http://attacker.example/w.bin"),
                    HasSubstr("s3://models/llama/v3/"), HasSubstr("models set-source")));
  // A directory is not the file of the same name.
  EXPECT_EQ(ResolveEnsureSource(Request("s3://models/llama/v3"), Registered("s3://models/llama/v3/"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ResolveEnsureSource, AnUnregisteredVersionIsRefusedNamingTheCommand) {
  absl::StatusOr<std::string> source = ResolveEnsureSource(
      Request("s3://models/llama/v3/"), {RegistryLookup::State::kUnregistered, ""});
  ASSERT_EQ(source.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(source), AllOf(HasSubstr("llama@v3"), HasSubstr("s3://models/llama/v3/"),
                                     HasSubstr("no registered source"),
                                     HasSubstr("modelcachectl models set-source llama@v3 URI")));
  EXPECT_THAT(Message(ResolveEnsureSource(Request(""), {RegistryLookup::State::kUnregistered, ""})),
              HasSubstr("asked without a source"));
}

TEST(ResolveEnsureSource, BeforeTheRegistryArrivesNothingIsFilled) {
  absl::StatusOr<std::string> source = ResolveEnsureSource(
      Request("s3://models/llama/v3/"), {RegistryLookup::State::kNotReceived, ""});
  ASSERT_EQ(source.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(source), HasSubstr("has not received the model registry"));
}

TEST(ResolveEnsureSource, AMalformedSourceIsInvalidEvenWhenRegistered) {
  absl::StatusOr<std::string> source =
      ResolveEnsureSource(Request("ftp://h/m"), Registered("s3://models/llama/v3/"));
  ASSERT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(source), AllOf(HasSubstr("llama@v3"), HasSubstr("ftp")));
}

}  // namespace
}  // namespace modelcache
