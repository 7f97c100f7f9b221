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

TEST(SourceUri, NormalizedSpellingsOfOnePlaceCompareEqual) {
  auto normal = [](std::string_view text) {
    absl::StatusOr<std::string> normalized = NormalizeSourceUri(text);
    EXPECT_TRUE(normalized.ok()) << text << ": " << normalized.status();
    return normalized.value_or("");
  };
  EXPECT_EQ(normal("HTTP://Example.COM:80/Models/x.bin"), "http://example.com/Models/x.bin");
  EXPECT_EQ(normal("https://example.com:443/m/"), "https://example.com/m/");
  EXPECT_EQ(normal("https://example.com:8443/m/"), "https://example.com:8443/m/");
  EXPECT_EQ(normal("http://h"), "http://h/");
  EXPECT_EQ(normal("http://h?sig=1"), "http://h/?sig=1");
  EXPECT_EQ(normal("S3://Models/llama/v3/"), "s3://models/llama/v3/");
  EXPECT_EQ(normal("s3://bucket"), "s3://bucket/");
  EXPECT_EQ(normal("file://localhost/srv/m"), "file:///srv/m");
  EXPECT_EQ(normal("file:///srv/m"), "file:///srv/m");
}

TEST(SourceUri, NormalizingKeepsWhatTellsSourcesApart) {
  // A directory is not a file; a path's case and a query are the origin's to interpret.
  EXPECT_NE(*NormalizeSourceUri("http://h/m/"), *NormalizeSourceUri("http://h/m"));
  EXPECT_NE(*NormalizeSourceUri("http://h/M"), *NormalizeSourceUri("http://h/m"));
  EXPECT_NE(*NormalizeSourceUri("http://h/m?v=1"), *NormalizeSourceUri("http://h/m?v=2"));
  EXPECT_NE(*NormalizeSourceUri("http://h:8080/m"), *NormalizeSourceUri("http://h/m"));
  EXPECT_NE(*NormalizeSourceUri("https://h/m"), *NormalizeSourceUri("http://h/m"));
  EXPECT_EQ(NormalizeSourceUri("ftp://h/m").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelcache
