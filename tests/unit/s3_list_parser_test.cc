#include "agent/source/s3_list_parser.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

constexpr std::string_view kTwoObjectsTruncated = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>models</Name><Prefix>llama/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>llama/config.json</Key>
    <LastModified>2026-01-02T03:04:05.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>
    <Size>1234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>llama/weights/00001-of-00002.safetensors</Key>
    <ETag>"d41d8cd98f00b204e9800998ecf8427e-12"</ETag>
    <Size>10000000000</Size>
  </Contents>
</ListBucketResult>)";

TEST(S3ListParser, ReadsKeysSizesEtagsAndContinuation) {
  auto page = ParseListObjectsV2(kTwoObjectsTruncated);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "llama/config.json");
  EXPECT_EQ(page->objects[0].size, 1234u);
  EXPECT_EQ(page->objects[0].etag, "\"9b2cf535f27731c974343645a3985328\"");
  EXPECT_EQ(page->objects[1].key, "llama/weights/00001-of-00002.safetensors");
  EXPECT_EQ(page->objects[1].size, 10000000000u);
  EXPECT_EQ(page->objects[1].etag, "\"d41d8cd98f00b204e9800998ecf8427e-12\"");
  EXPECT_TRUE(page->is_truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3ListParser, LastPageIsNotTruncated) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>false</IsTruncated>"
      "<Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_FALSE(page->is_truncated);
  EXPECT_TRUE(page->next_continuation_token.empty());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].etag, "");
}

TEST(S3ListParser, EmptyBucketHasNoObjects) {
  auto page = ParseListObjectsV2("<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->objects.empty());
}

TEST(S3ListParser, DecodesEntitiesAndCdataInKeys) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><Contents><Key>a&amp;b &lt;c&gt; &#39;d&#x27; &#xE9;</Key><Size>0</Size></Contents>"
      "<Contents><Key><![CDATA[x&amp;y]]></Key><Size>2</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "a&b <c> 'd' \xC3\xA9");
  EXPECT_EQ(page->objects[1].key, "x&amp;y");  // CDATA is literal
}

TEST(S3ListParser, CommonPrefixesAreNotObjects) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes>"
      "<Contents><Key>f</Key><Size>3</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "f");
}

TEST(S3ListParser, RejectsMalformedDocuments) {
  EXPECT_EQ(ParseListObjectsV2("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseListObjectsV2("<Error><Code>NoSuchBucket</Code></Error>").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseListObjectsV2("<ListBucketResult><Contents><Key>a</Key>").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseListObjectsV2("<ListBucketResult><Contents><Key>a</Size></Contents></ListBucketResult>")
                .status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseListObjectsV2("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>")
                .status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(S3ListParser, RejectsNonNumericSize) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><Contents><Key>a</Key><Size>12x</Size></Contents></ListBucketResult>");
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(page.status().message().find("12x"), absl::string_view::npos);
}

TEST(S3ListParser, TruncatedWithoutTokenIsAnError) {
  // Following it would loop forever.
  auto page = ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(S3ListParser, ReadsErrorDocument) {
  auto error = ParseS3Error(R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>
<BucketName>nope</BucketName></Error>)");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "NoSuchBucket");
  EXPECT_EQ(error->message, "The specified bucket does not exist");
  EXPECT_FALSE(ParseS3Error("<ListBucketResult/>").has_value());
  EXPECT_FALSE(ParseS3Error("not xml at all").has_value());
}

TEST(S3ListParser, UnknownEntitiesStayLiteral) {
  EXPECT_EQ(DecodeXmlEntities("a & b &bogus; &#0; &amp"), "a & b &bogus; &#0; &amp");
  EXPECT_EQ(DecodeXmlEntities("&quot;x&quot;&apos;"), "\"x\"'");
}

TEST(S3ListParser, ChecksumAlgorithmSha256IsNoted) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><Contents><Key>a</Key><Size>1</Size><ChecksumAlgorithm>CRC32</ChecksumAlgorithm>"
      "<ChecksumAlgorithm>SHA256</ChecksumAlgorithm></Contents>"
      "<Contents><Key>b</Key><Size>1</Size><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm></Contents>"
      "<Contents><Key>c</Key><Size>1</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->objects.size(), 3u);
  EXPECT_TRUE(page->objects[0].has_sha256_checksum);
  EXPECT_FALSE(page->objects[1].has_sha256_checksum);
  EXPECT_FALSE(page->objects[2].has_sha256_checksum);
}

TEST(S3ChecksumHeader, WholeObjectSha256IsHex) {
  EXPECT_EQ(WholeObjectSha256Hex("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");  // sha256("")
  EXPECT_EQ(WholeObjectSha256Hex("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "FULL_OBJECT"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(S3ChecksumHeader, CompositeOrMalformedValuesAreNotUsed) {
  EXPECT_EQ(WholeObjectSha256Hex("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=-3"), std::nullopt);
  EXPECT_EQ(WholeObjectSha256Hex("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "COMPOSITE"), std::nullopt);
  EXPECT_EQ(WholeObjectSha256Hex("AAAA"), std::nullopt);  // 3 bytes, not 32
  EXPECT_EQ(WholeObjectSha256Hex("not base64!"), std::nullopt);
  EXPECT_EQ(WholeObjectSha256Hex(""), std::nullopt);
}

}  // namespace
}  // namespace modelcache
