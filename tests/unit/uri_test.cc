#include "common/uri.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

TEST(SourceUri, AUriOverTheLimitIsRefusedWithoutQuotingItWhole) {
  const std::string at_limit = "http://origin/" + std::string(kMaxSourceUriBytes - 14, 'a');
  ASSERT_EQ(at_limit.size(), kMaxSourceUriBytes);
  EXPECT_TRUE(CheckSourceUriLength(at_limit).ok());
  EXPECT_TRUE(ParseSourceUri(at_limit).ok());
  const std::string huge = "http://origin/" + std::string(1 << 20, 'a');
  for (const absl::Status& status : {CheckSourceUriLength(huge), ParseSourceUri(huge).status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_LT(status.message().size(), 300u);
    EXPECT_NE(status.message().find(std::to_string(huge.size()) + " bytes"), std::string::npos)
        << status;
    EXPECT_NE(status.message().find("limit of 4096 bytes"), std::string::npos) << status;
    EXPECT_NE(status.message().find("http://origin/aaa"), std::string::npos) << status;
  }
}

TEST(SourceUri, ParsesS3) {
  absl::StatusOr<SourceUri> uri = ParseSourceUri("s3://models/llama/v2/");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->scheme, "s3");
  EXPECT_EQ(uri->authority, "models");
  EXPECT_EQ(uri->path, "llama/v2/");
  EXPECT_EQ(ParseSourceUri("s3://bucket")->path, "");
}

TEST(SourceUri, ParsesHttpWithPortAndQuery) {
  absl::StatusOr<SourceUri> uri = ParseSourceUri("https://example.com:8443/m/x.bin?sig=1");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->scheme, "https");
  EXPECT_EQ(uri->authority, "example.com:8443");
  EXPECT_EQ(uri->path, "/m/x.bin?sig=1");
  EXPECT_EQ(ParseSourceUri("http://127.0.0.1:8080")->path, "/");
  EXPECT_EQ(ParseSourceUri("HTTP://h/p")->scheme, "http");
}

TEST(SourceUri, ParsesFile) {
  absl::StatusOr<SourceUri> uri = ParseSourceUri("file:///srv/models/llama");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->scheme, "file");
  EXPECT_EQ(uri->authority, "");
  EXPECT_EQ(uri->path, "/srv/models/llama");
}

TEST(SourceUri, RejectsUnknownSchemeNamingIt) {
  absl::StatusOr<SourceUri> uri = ParseSourceUri("ftp://host/x");
  ASSERT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message(uri.status().message());
  EXPECT_NE(message.find("ftp"), std::string::npos) << message;
  EXPECT_NE(message.find("s3"), std::string::npos) << message;
}

TEST(SourceUri, RejectsMalformed) {
  for (std::string_view text :
       {"", "s3://", "s3:///key", "http:///path", "https://", "file://relative/path", "file://",
        "/no/scheme", "s3://bucket/a/../b", "http://h/a/../../etc/passwd", "file:///srv/../etc",
        "http://h/a b"}) {
    EXPECT_EQ(ParseSourceUri(text).status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

}  // namespace
}  // namespace modelcache
