#include "agent/maintenance/repair_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelcache {
namespace {

using ::testing::ElementsAre;

v1::Manifest ThreeFiles() {
  v1::Manifest manifest;
  manifest.set_name("m");
  manifest.set_version("1");
  manifest.set_source("http://origin/m/");
  for (auto [path, size, sha] : {std::tuple{"a.bin", 10, "aa"}, std::tuple{"b.bin", 20, "bb"},
                                 std::tuple{"c.bin", 30, "cc"}}) {
    v1::ManifestFile* file = manifest.add_files();
    file->set_path(path);
    file->set_size(size);
    file->set_sha256(sha);
  }
  return manifest;
}

std::vector<SourceFile> Listing(const v1::Manifest& manifest) {
  std::vector<SourceFile> files;
  for (const v1::ManifestFile& file : manifest.files()) {
    files.push_back({.path = file.path(), .size = file.size(), .location = "x",
                     .expected_sha256 = file.sha256(), .etag = "\"etag-" + file.path() + "\""});
  }
  return files;
}

TEST(RepairPlan, OnlyTheBadFileIsFetchedAndGoodOnesAreJournaledComplete) {
  v1::Manifest manifest = ThreeFiles();
  RepairPlan plan = PlanRepair(manifest, {"b.bin"}, Listing(manifest));
  EXPECT_THAT(plan.keep, ElementsAre("a.bin", "c.bin"));
  EXPECT_THAT(plan.fetch, ElementsAre("b.bin"));
  EXPECT_EQ(plan.bytes_kept, 40u);
  EXPECT_EQ(plan.bytes_to_fetch, 20u);
  ASSERT_EQ(plan.journal.files_size(), 3);
  EXPECT_EQ(plan.journal.source(), "http://origin/m/");
  EXPECT_EQ(plan.journal.name(), "m");
  EXPECT_EQ(plan.journal.files(0).committed_bytes(), 10u);
  EXPECT_EQ(plan.journal.files(0).etag(), "\"etag-a.bin\"");
  EXPECT_EQ(plan.journal.files(1).committed_bytes(), 0u);
  EXPECT_EQ(plan.journal.files(2).committed_bytes(), 30u);
}

TEST(RepairPlan, AFileTheSourceChangedIsFetchedAgainEvenIfItVerified) {
  v1::Manifest manifest = ThreeFiles();
  std::vector<SourceFile> listing = Listing(manifest);
  listing[0].size = 11;             // a.bin grew at the origin
  listing[2].expected_sha256 = "dd";  // c.bin has new content
  RepairPlan plan = PlanRepair(manifest, {}, listing);
  EXPECT_THAT(plan.keep, ElementsAre("b.bin"));
  EXPECT_THAT(plan.fetch, ElementsAre("a.bin", "c.bin"));
  EXPECT_EQ(plan.journal.files(0).size(), 11u);
  EXPECT_EQ(plan.journal.files(0).committed_bytes(), 0u);
}

TEST(RepairPlan, FilesNewAtTheSourceAreFetchedAndVanishedOnesDropped) {
  v1::Manifest manifest = ThreeFiles();
  std::vector<SourceFile> listing = Listing(manifest);
  listing.erase(listing.begin() + 1);  // b.bin gone
  listing.push_back({.path = "d.bin", .size = 5, .location = "x"});
  RepairPlan plan = PlanRepair(manifest, {"b.bin"}, listing);
  EXPECT_THAT(plan.keep, ElementsAre("a.bin", "c.bin"));
  EXPECT_THAT(plan.fetch, ElementsAre("d.bin"));
  ASSERT_EQ(plan.journal.files_size(), 3);
  EXPECT_EQ(plan.journal.files(2).path(), "d.bin");
}

}  // namespace
}  // namespace modelcache
