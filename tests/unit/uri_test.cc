#include "common/uri.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

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
