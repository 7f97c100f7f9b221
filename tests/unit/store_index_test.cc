#include <gtest/gtest.h>

#include <algorithm>

#include "agent/store/index.h"
#include "agent/store/manifest.h"
#include "agent/store/publish.h"
#include "common/fs.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

class ScanVolumeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(layout_.CreateDirectories().ok()); }

  v1::Manifest PublishModel(const std::string& name, const std::string& version,
                            const std::string& contents, int64_t fetched_unix_ms) {
    v1::Manifest manifest;
    manifest.set_name(name);
    manifest.set_version(version);
    manifest.set_fetched_unix_ms(fetched_unix_ms);
    manifest.set_total_bytes(contents.size());
    v1::ManifestFile* file = manifest.add_files();
    file->set_path("data.bin");
    file->set_size(contents.size());
    EXPECT_TRUE(CreateDirectories(layout_.StagingTree(name, version)).ok());
    EXPECT_TRUE(WriteFileAtomic(layout_.StagingTree(name, version) / "data.bin", contents).ok());
    absl::Status status = Publish(layout_, manifest);
    EXPECT_TRUE(status.ok()) << status;
    return manifest;
  }

  size_t TrashEntries() const {
    size_t count = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(layout_.TrashDir())) ++count;
    return count;
  }

  testing::TempDir dir_;
  CacheLayout layout_{dir_.Path() / "volume"};
};

TEST_F(ScanVolumeTest, RebuildsIndexFromManifests) {
  PublishModel("a", "1", "12345", 1000);
  PublishModel("a", "2", "123", 2000);
  PublishModel("b", "x", "1", 3000);
  absl::StatusOr<ScanReport> report = ScanVolume(layout_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->index.Size(), 3u);
  EXPECT_EQ(report->index.TotalBytes(), 9u);
  const IndexEntry* entry = report->index.Find("a", "2");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->manifest.total_bytes(), 3u);
  // No access file yet: the fetch time stands in.
  EXPECT_EQ(entry->last_access, FromUnixMillis(2000));
  EXPECT_EQ(report->index.Find("b", "y"), nullptr);
  EXPECT_TRUE(report->problems.empty());
}

TEST_F(ScanVolumeTest, VersionWithoutManifestGoesToTrash) {
  PublishModel("good", "1", "abc", 1000);
  ASSERT_TRUE(CreateDirectories(layout_.ModelDir("bad", "1")).ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.ModelDir("bad", "1") / "partial.bin", "xx").ok());
  ASSERT_TRUE(CreateDirectories(layout_.ModelDir("corrupt", "1")).ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.ManifestPath("corrupt", "1"), "{not json").ok());

  absl::StatusOr<ScanReport> report = ScanVolume(layout_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->index.Size(), 1u);
  EXPECT_NE(report->index.Find("good", "1"), nullptr);
  EXPECT_FALSE(fs::exists(layout_.ModelDir("bad", "1")));
  EXPECT_FALSE(fs::exists(layout_.ModelDir("corrupt", "1")));
  EXPECT_EQ(TrashEntries(), 2u);
  ASSERT_EQ(report->problems.size(), 2u);
  EXPECT_TRUE(std::any_of(report->problems.begin(), report->problems.end(), [](const auto& p) {
    return p.path == "models/bad/1" && p.error == "no manifest" && p.next == "moved to trash";
  })) << report->problems[0].path << ": " << report->problems[0].error;
}

TEST_F(ScanVolumeTest, ManifestInTheWrongFolderGoesToTrash) {
  v1::Manifest manifest = PublishModel("a", "1", "abc", 1000);
  fs::rename(layout_.ModelDir("a", "1"), layout_.ModelsDir() / "a" / "2");
  absl::StatusOr<ScanReport> report = ScanVolume(layout_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->index.Size(), 0u);
  EXPECT_EQ(TrashEntries(), 1u);
}

TEST_F(ScanVolumeTest, StagingWithJournalKeptWithoutJournalTrashed) {
  v1::FillJournal journal;
  journal.set_name("resume");
  journal.set_version("1");
  ASSERT_TRUE(CreateDirectories(layout_.StagingTree("resume", "1")).ok());
  ASSERT_TRUE(WriteJournal(layout_.JournalPath("resume", "1"), journal).ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.StagingTree("resume", "1") / "part", "12345").ok());

  ASSERT_TRUE(CreateDirectories(layout_.StagingTree("orphan", "1")).ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.StagingTree("orphan", "1") / "part", "1234567").ok());
  ASSERT_TRUE(CreateDirectories(layout_.StagingTree("broken", "1")).ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.JournalPath("broken", "1"), "garbage").ok());
  ASSERT_TRUE(CreateDirectories(layout_.StagingDir() / "no-at-sign").ok());

  absl::StatusOr<ScanReport> report = ScanVolume(layout_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->staging_found, std::vector<std::string>{"resume@1"});
  EXPECT_TRUE(fs::exists(layout_.StagingTree("resume", "1") / "part"));
  EXPECT_FALSE(fs::exists(layout_.StagingFor("orphan", "1")));
  EXPECT_FALSE(fs::exists(layout_.StagingFor("broken", "1")));
  EXPECT_FALSE(fs::exists(layout_.StagingDir() / "no-at-sign"));
  EXPECT_EQ(report->staging_removed_bytes, 7u + 7u);  // "1234567" + "garbage"
  EXPECT_EQ(TrashEntries(), 3u);
}

TEST_F(ScanVolumeTest, StagingWithoutJournalIsKeptWhileItsFillLockExists) {
  // Another node's fill created the folder and holds the lock but has no journal yet.
  ASSERT_TRUE(CreateDirectories(layout_.StagingTree("busy", "1")).ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.StagingTree("busy", "1") / "part", "123").ok());
  ASSERT_TRUE(CreateDirectories(layout_.LocksDir()).ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.LocksDir() / "busy@1.lock", "node=n\n").ok());

  absl::StatusOr<ScanReport> report = ScanVolume(layout_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(fs::exists(layout_.StagingTree("busy", "1") / "part"));
  EXPECT_EQ(report->staging_removed_bytes, 0u);
  EXPECT_TRUE(report->staging_found.empty());
  EXPECT_EQ(TrashEntries(), 0u);
}

TEST_F(ScanVolumeTest, AccessTimePersistsAcrossScans) {
  PublishModel("m", "1", "abc", 1000);
  Clock::TimePoint accessed = FromUnixMillis(1795000000123);
  ASSERT_TRUE(PersistAccess(layout_, "m", "1", accessed).ok());
  absl::StatusOr<ScanReport> report = ScanVolume(layout_);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_NE(report->index.Find("m", "1"), nullptr);
  EXPECT_EQ(report->index.Find("m", "1")->last_access, accessed);

  Clock::TimePoint later = accessed + std::chrono::hours(5);
  ASSERT_TRUE(PersistAccess(layout_, "m", "1", later).ok());
  report = ScanVolume(layout_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->index.Find("m", "1")->last_access, later);
  // The access file is not mistaken for part of the model or a problem.
  EXPECT_TRUE(report->problems.empty());
}

TEST_F(ScanVolumeTest, PersistAccessForMissingModelIsNotFound) {
  EXPECT_EQ(PersistAccess(layout_, "nope", "1", FromUnixMillis(1)).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ScanVolumeTest, IsPublishedUntilTheFolderOrTheWholeRootIsGone) {
  PublishModel("a", "1", "12345", 1000);
  PublishModel("b", "1", "1", 1000);
  EXPECT_EQ(IsPublished(layout_, "a", "1").value_or(false), true);
  EXPECT_EQ(IsPublished(layout_, "a", "2").value_or(true), false);
  fs::remove_all(layout_.ModelDir("a", "1"));
  EXPECT_EQ(IsPublished(layout_, "a", "1").value_or(true), false);
  EXPECT_EQ(IsPublished(layout_, "b", "1").value_or(false), true);
  fs::remove_all(layout_.Root());
  EXPECT_EQ(IsPublished(layout_, "b", "1").value_or(true), false);
  // A file where the model's folder was is not a published model either.
  ASSERT_TRUE(CreateDirectories(layout_.ModelsDir() / "c").ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.ModelDir("c", "1"), "not a folder").ok());
  EXPECT_EQ(IsPublished(layout_, "c", "1").value_or(true), false);
}

TEST(ModelIndex, PutFindRemoveAndTotals) {
  ModelIndex index;
  IndexEntry entry;
  entry.manifest.set_name("a");
  entry.manifest.set_version("1");
  entry.manifest.set_total_bytes(10);
  index.Put(entry);
  entry.manifest.set_version("2");
  entry.manifest.set_total_bytes(32);
  index.Put(entry);
  entry.manifest.set_total_bytes(30);
  index.Put(entry);  // replaces
  EXPECT_EQ(index.Size(), 2u);
  EXPECT_EQ(index.TotalBytes(), 40u);
  EXPECT_EQ(index.All().size(), 2u);

  index.SetLastAccess("a", "1", FromUnixMillis(77));
  EXPECT_EQ(index.Find("a", "1")->last_access, FromUnixMillis(77));
  index.SetLastAccess("zzz", "1", FromUnixMillis(1));  // unknown: ignored
  index.Remove("a", "1");
  EXPECT_EQ(index.Find("a", "1"), nullptr);
  EXPECT_EQ(index.TotalBytes(), 30u);
}

}  // namespace
}  // namespace modelcache
