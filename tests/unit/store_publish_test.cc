#include <gtest/gtest.h>

#include <map>

#include "agent/store/manifest.h"
#include "agent/store/publish.h"
#include "common/fs.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

// Writes `files` into the staging tree (plus a journal) and returns the matching manifest.
v1::Manifest Stage(const CacheLayout& layout, const std::string& name, const std::string& version,
                   const std::map<std::string, std::string>& files) {
  v1::Manifest manifest;
  manifest.set_name(name);
  manifest.set_version(version);
  manifest.set_source("file:///src");
  uint64_t total = 0;
  for (const auto& [path, contents] : files) {
    fs::path full = layout.StagingTree(name, version) / path;
    EXPECT_TRUE(CreateDirectories(full.parent_path()).ok());
    EXPECT_TRUE(WriteFileAtomic(full, contents).ok());
    v1::ManifestFile* file = manifest.add_files();
    file->set_path(path);
    file->set_size(contents.size());
    total += contents.size();
  }
  manifest.set_total_bytes(total);
  v1::FillJournal journal;
  journal.set_name(name);
  journal.set_version(version);
  EXPECT_TRUE(WriteJournal(layout.JournalPath(name, version), journal).ok());
  return manifest;
}

class PublishTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(layout_.CreateDirectories().ok()); }
  testing::TempDir dir_;
  CacheLayout layout_{dir_.Path() / "volume"};
};

TEST_F(PublishTest, MakesModelVisibleWithManifest) {
  v1::Manifest manifest =
      Stage(layout_, "llama", "v1", {{"config.json", "{}"}, {"weights/a.bin", "0123456789"}});
  ASSERT_FALSE(fs::exists(layout_.ModelDir("llama", "v1")));
  absl::Status status = Publish(layout_, manifest);
  ASSERT_TRUE(status.ok()) << status;

  EXPECT_EQ(*ReadFileToString(layout_.ModelDir("llama", "v1") / "weights/a.bin"), "0123456789");
  EXPECT_EQ(*ReadFileToString(layout_.ModelDir("llama", "v1") / "config.json"), "{}");
  absl::StatusOr<v1::Manifest> read = ReadManifest(layout_.ManifestPath("llama", "v1"));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), manifest.SerializeAsString());
  EXPECT_FALSE(fs::exists(layout_.StagingFor("llama", "v1")));
}

TEST_F(PublishTest, SecondPublishIsAlreadyExistsAndLeavesFirstUntouched) {
  v1::Manifest first = Stage(layout_, "m", "1", {{"data.bin", "first"}});
  ASSERT_TRUE(Publish(layout_, first).ok());
  v1::Manifest second = Stage(layout_, "m", "1", {{"data.bin", "second!"}, {"extra", "x"}});

  absl::Status status = Publish(layout_, second);
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
  EXPECT_EQ(*ReadFileToString(layout_.ModelDir("m", "1") / "data.bin"), "first");
  EXPECT_FALSE(fs::exists(layout_.ModelDir("m", "1") / "extra"));
  EXPECT_EQ(ReadManifest(layout_.ManifestPath("m", "1"))->SerializeAsString(),
            first.SerializeAsString());
  // The losing staging tree is left for the caller to trash.
  EXPECT_TRUE(fs::exists(layout_.StagingTree("m", "1") / "extra"));
}

TEST_F(PublishTest, EmptyTargetDirectoryIsNotReplaced) {
  v1::Manifest manifest = Stage(layout_, "m", "1", {{"f", "x"}});
  ASSERT_TRUE(CreateDirectories(layout_.ModelDir("m", "1")).ok());
  EXPECT_EQ(Publish(layout_, manifest).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(fs::exists(layout_.StagingTree("m", "1") / "f"));
}

TEST_F(PublishTest, MissingOrShortFileIsNotPublished) {
  v1::Manifest manifest = Stage(layout_, "m", "1", {{"f", "abc"}});
  manifest.mutable_files(0)->set_size(4);
  EXPECT_FALSE(Publish(layout_, manifest).ok());
  manifest.mutable_files(0)->set_size(3);
  manifest.add_files()->set_path("absent");
  EXPECT_FALSE(Publish(layout_, manifest).ok());
  EXPECT_FALSE(fs::exists(layout_.ModelDir("m", "1")));
}

TEST_F(PublishTest, InvalidNameIsRejected) {
  v1::Manifest manifest;
  manifest.set_name("../escape");
  manifest.set_version("1");
  EXPECT_EQ(Publish(layout_, manifest).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelcache
