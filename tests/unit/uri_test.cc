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

TEST(SameSource, SchemeHostAndDefaultPortDoNotMatterForHttp) {
  EXPECT_TRUE(SameSource("HTTP://Origin.Example:80/m/", "http://origin.example/m/"));
  EXPECT_TRUE(SameSource("https://origin.example:443/w.bin", "https://ORIGIN.example/w.bin"));
  EXPECT_TRUE(SameSource("http://h", "http://h/"));
  EXPECT_TRUE(SameSource("http://h:/x", "http://h/x"));
  EXPECT_EQ(*NormalizeSourceUri("HTTP://[::1]:80/x"), "http://[::1]/x");
  // Another port is another server; 443 is not the default of plain http.
  EXPECT_FALSE(SameSource("http://h:8080/m/", "http://h/m/"));
  EXPECT_FALSE(SameSource("http://h:443/m/", "https://h/m/"));
  EXPECT_FALSE(SameSource("http://h/m/", "https://h/m/"));
}

TEST(SameSource, PercentEscapesFollowRfc3986) {
  EXPECT_TRUE(SameSource("http://h/a%2fb", "http://h/a%2Fb"));
  EXPECT_TRUE(SameSource("http://h/%7Euser/w.bin", "http://h/~user/w.bin"));
  EXPECT_EQ(*NormalizeSourceUri("http://h/a%2fb%41%zz%4"), "http://h/a%2FbA%zz%4");
  // An escaped reserved character is not the character itself.
  EXPECT_FALSE(SameSource("http://h/a%2Fb", "http://h/a/b"));
}

TEST(SameSource, PathQueryAndTrailingSlashAreSignificant) {
  EXPECT_FALSE(SameSource("http://h/m/", "http://h/m"));
  EXPECT_FALSE(SameSource("http://h/M/w.bin", "http://h/m/w.bin"));
  EXPECT_FALSE(SameSource("http://h/w.bin?rev=1", "http://h/w.bin?rev=2"));
  EXPECT_FALSE(SameSource("http://h/w.bin?rev=1", "http://h/w.bin"));
  EXPECT_FALSE(SameSource("s3://models/llama/v3/", "s3://models/llama/v3"));
  EXPECT_FALSE(SameSource("s3://models/Llama/v3/", "s3://models/llama/v3/"));
  EXPECT_FALSE(SameSource("s3://Models/llama/v3/", "s3://models/llama/v3/"));
}

TEST(SameSource, OtherHostsBucketsAndSchemesDiffer) {
  EXPECT_FALSE(SameSource("http://attacker.example/w.bin", "s3://models/llama/v3/"));
  EXPECT_FALSE(SameSource("http://a.example/m/", "http://b.example/m/"));
  EXPECT_FALSE(SameSource("s3://a/m/", "s3://b/m/"));
  EXPECT_FALSE(SameSource("file:///srv/a", "file:///srv/b"));
}

TEST(SameSource, S3WholeBucketAndFileLocalhost) {
  EXPECT_TRUE(SameSource("s3://models", "s3://models/"));
  EXPECT_TRUE(SameSource("S3://models/llama/", "s3://models/llama/"));
  EXPECT_EQ(*NormalizeSourceUri("s3://models/llama/v3/"), "s3://models/llama/v3/");
  EXPECT_TRUE(SameSource("file://localhost/srv/m", "file:///srv/m"));
  EXPECT_EQ(*NormalizeSourceUri("FILE:///srv/m"), "file:///srv/m");
}

TEST(SameSource, UnparsableUrisAreSameOnlyWhenEqual) {
  EXPECT_TRUE(SameSource("not a uri", "not a uri"));
  EXPECT_FALSE(SameSource("not a uri", "not-a-uri"));
  EXPECT_FALSE(SameSource("", "http://h/"));
  EXPECT_EQ(NormalizeSourceUri("ftp://h/x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelcache
