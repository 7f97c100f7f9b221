#include "agent/fill/listing_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace modelcache {
namespace {

using ::testing::HasSubstr;

SourceFile File(std::string path, uint64_t size) {
  SourceFile file;
  file.path = std::move(path);
  file.size = size;
  return file;
}

TEST(ListingCheck, AnOrdinaryListingPassesAndSums) {
  std::vector<SourceFile> files = {File("config.json", 10), File("weights/a.bin", 1 << 30)};
  EXPECT_TRUE(CheckListing(files).ok());
  absl::StatusOr<uint64_t> total = ListedTotalBytes(files);
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(*total, 10u + (1u << 30));
}

TEST(ListingCheck, SizesThatAddUpPast2To64AreRefusedNamingTheFile) {
  // Each fits in a file; together they wrap around to a small number.
  std::vector<SourceFile> files = {File("a.bin", kMaxListedFileBytes),
                                   File("b.bin", kMaxListedFileBytes), File("c.bin", 10)};
  absl::Status status = CheckListing(files);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("file c.bin"));
  EXPECT_THAT(status.message(), HasSubstr("2^64"));
  EXPECT_EQ(ListedTotalBytes(files).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ListingCheck, AFileLargerThanAFileCanBeIsRefused) {
  std::vector<SourceFile> files = {File("config.json", 1), File("huge.bin", UINT64_MAX)};
  absl::Status status = CheckListing(files);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("file huge.bin"));
  EXPECT_THAT(status.message(), HasSubstr("18446744073709551615"));
}

TEST(ListingCheck, BadLayoutsAreRefused) {
  EXPECT_EQ(CheckListing({}).code(), absl::StatusCode::kNotFound);
  std::vector<SourceFile> twice = {File("a", 1), File("a", 1)};
  EXPECT_THAT(CheckListing(twice).message(), HasSubstr("listed twice"));
  std::vector<SourceFile> folder = {File("a", 1), File("a/b", 1)};
  EXPECT_THAT(CheckListing(folder).message(), HasSubstr("also a folder"));
  std::vector<SourceFile> escape = {File("../x", 1)};
  EXPECT_EQ(CheckListing(escape).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelcache
