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

// As the AWS CLI takes it: the key is what is written, spaces and non-ASCII included.
TEST(SourceUri, S3KeysAreTakenAsWrittenWithSpacesAndUtf8) {
  absl::StatusOr<SourceUri> spaced = ParseSourceUri("s3://models/llama 3/v1/");
  ASSERT_TRUE(spaced.ok()) << spaced.status();
  EXPECT_EQ(spaced->authority, "models");
  EXPECT_EQ(spaced->path, "llama 3/v1/");
  absl::StatusOr<SourceUri> utf8 = ParseSourceUri("s3://models/mod\u00e8le/\u6a21\u578b v1/");
  ASSERT_TRUE(utf8.ok()) << utf8.status();
  EXPECT_EQ(utf8->path, "mod\u00e8le/\u6a21\u578b v1/");
  // No percent-decoding: "%20" is three characters of the key, '?' and '#' are characters too.
  EXPECT_EQ(ParseSourceUri("s3://models/llama%203/")->path, "llama%203/");
  EXPECT_EQ(ParseSourceUri("s3://models/a?b#c/")->path, "a?b#c/");
}

TEST(SourceUri, RejectsWhatNoS3KeyOrUrlHolds) {
  for (std::string_view text :
       {"s3://models/a\nb/", "s3://models/a\tb/", "s3://my bucket/x/", "s3://models/\xff\xfe/",
        "s3://models/\xc0\xaf/", "s3://models/a?/../b/", "http://h/a b", "file:///srv/a b"}) {
    absl::StatusOr<SourceUri> uri = ParseSourceUri(text);
    EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_NE(std::string(ParseSourceUri("s3://models/\xff/").status().message()).find("UTF-8"),
            std::string::npos);
  EXPECT_NE(std::string(ParseSourceUri("http://h/a b").status().message()).find("%20"),
            std::string::npos);
}

}  // namespace
}  // namespace modelcache
