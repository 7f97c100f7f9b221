#include "common/oci_uri.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/uri.h"

namespace modelcache {
namespace {

using ::testing::HasSubstr;

constexpr char kDigest[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(OciUri, RegistryRepositoryAndTag) {
  absl::StatusOr<OciUri> uri = ParseOciUri("oci://Ghcr.io/org/models/llama-3:v1.2");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->registry, "ghcr.io");
  EXPECT_EQ(uri->repository, "org/models/llama-3");
  EXPECT_EQ(uri->tag, "v1.2");
  EXPECT_EQ(uri->digest, "");
  EXPECT_EQ(uri->Reference(), "v1.2");
  EXPECT_FALSE(uri->IsLoopbackRegistry());
}

TEST(OciUri, PortDigestAndDefaultTag) {
  absl::StatusOr<OciUri> uri = ParseOciUri(std::string("oci://127.0.0.1:5000/m@") + kDigest);
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->registry, "127.0.0.1:5000");
  EXPECT_EQ(uri->repository, "m");
  EXPECT_EQ(uri->tag, "");
  EXPECT_EQ(uri->Reference(), kDigest);
  EXPECT_TRUE(uri->IsLoopbackRegistry());
  EXPECT_EQ(ParseOciUri("oci://localhost:5000/a/b")->tag, "latest");
  EXPECT_TRUE(ParseOciUri("oci://localhost:5000/a/b")->IsLoopbackRegistry());
  EXPECT_TRUE(ParseOciUri("oci://[::1]:5000/a")->IsLoopbackRegistry());
  absl::StatusOr<OciUri> both = ParseOciUri(std::string("oci://r.io/a:v1@") + kDigest);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->Reference(), kDigest) << "the digest wins over the tag";
}

TEST(OciUri, BadUrisAreRefusedNamingTheUri) {
  for (const std::string& bad : std::vector<std::string>{"oci://registry", "oci:///repo", "oci://r.io/Upper:v1", "oci://r.io/a//b", "oci://r.io/a:",
        "oci://r.io/a:-x", "oci://r.io/a@sha256:abc", "oci://r.io/a@sha512:" + std::string(128, 'a'),
        "oci://r.io/a-:v1", "oci://r.io/a..b", "oci://r.io/a b"}) {
    absl::StatusOr<OciUri> uri = ParseOciUri(bad);
    ASSERT_FALSE(uri.ok()) << bad;
    EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(uri.status().message()), HasSubstr(bad));
  }
}

TEST(OciUri, SameSourceUnderTheCanonicalForm) {
  EXPECT_TRUE(SameSource("oci://R.io/a", "oci://r.io/a:latest"));
  EXPECT_TRUE(SameSource(std::string("oci://r.io/a:v1@") + kDigest, std::string("oci://r.io/a@") + kDigest));
  EXPECT_FALSE(SameSource("oci://r.io/a:v1", "oci://r.io/a:v2"));
  EXPECT_FALSE(SameSource("oci://r.io/a:v1", std::string("oci://r.io/a@") + kDigest));
  EXPECT_FALSE(SameSource("oci://r.io:443/a:v1", "oci://r.io/a:v1")) << "in doubt, different";
  absl::StatusOr<SourceUri> generic = ParseSourceUri("oci://r.io/a/b:v1");
  ASSERT_TRUE(generic.ok()) << generic.status();
  EXPECT_EQ(generic->scheme, "oci");
  EXPECT_EQ(generic->authority, "r.io");
  EXPECT_EQ(generic->path, "/a/b:v1");
}

}  // namespace
}  // namespace modelcache
