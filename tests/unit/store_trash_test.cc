#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "agent/store/trash.h"
#include "common/fs.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

class TrashTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(layout_.CreateDirectories().ok()); }

  // A model-like folder with `files` files of `bytes` bytes each, in two levels.
  fs::path MakeTree(const fs::path& root, int files, size_t bytes) {
    EXPECT_TRUE(CreateDirectories(root / "sub").ok());
    for (int i = 0; i < files; ++i) {
      fs::path file = (i % 2 ? root / "sub" : root) / ("f" + std::to_string(i));
      EXPECT_TRUE(WriteFileAtomic(file, std::string(bytes, 'x')).ok());
    }
    return root;
  }

  size_t TrashEntries() const {
    size_t count = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(layout_.TrashDir())) ++count;
    return count;
  }

  testing::TempDir dir_;
  CacheLayout layout_{dir_.Path() / "volume"};
};

TEST_F(TrashTest, MoveToTrashRenamesUnderTrash) {
  fs::path victim = MakeTree(layout_.ModelDir("m", "1"), 3, 10);
  absl::StatusOr<fs::path> moved = MoveToTrash(layout_, victim);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_FALSE(fs::exists(victim));
  EXPECT_EQ(moved->parent_path(), layout_.TrashDir());
  EXPECT_TRUE(fs::exists(*moved / "sub" / "f1"));
  EXPECT_NE(moved->filename().string().find("1"), std::string::npos);
}

TEST_F(TrashTest, SameBasenameGetsUniqueNames) {
  std::set<fs::path> names;
  for (int i = 0; i < 20; ++i) {
    fs::path victim = MakeTree(layout_.ModelDir("m", "1"), 1, 1);
    absl::StatusOr<fs::path> moved = MoveToTrash(layout_, victim);
    ASSERT_TRUE(moved.ok()) << moved.status();
    names.insert(*moved);
  }
  EXPECT_EQ(names.size(), 20u);
  EXPECT_EQ(TrashEntries(), 20u);
}

TEST_F(TrashTest, MissingVictimIsNotFound) {
  EXPECT_EQ(MoveToTrash(layout_, layout_.ModelDir("nope", "1")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TrashTest, EmptyTrashDeletesAllAndCountsBytes) {
  ASSERT_TRUE(MoveToTrash(layout_, MakeTree(layout_.ModelDir("a", "1"), 4, 100)).ok());
  ASSERT_TRUE(MoveToTrash(layout_, MakeTree(layout_.StagingFor("b", "2"), 3, 7)).ok());
  absl::StatusOr<uint64_t> freed = EmptyTrash(layout_);
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 4u * 100 + 3u * 7);
  EXPECT_EQ(TrashEntries(), 0u);
  EXPECT_EQ(*EmptyTrash(layout_), 0u);
}

TEST_F(TrashTest, ConcurrentEmptyTrashSucceedsAndFreesEachByteOnce) {
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(
        MoveToTrash(layout_, MakeTree(layout_.ModelDir("m", std::to_string(i)), 40, 64)).ok());
  }
  absl::StatusOr<uint64_t> first = absl::UnknownError("not run");
  absl::StatusOr<uint64_t> second = absl::UnknownError("not run");
  std::thread other([&] { second = EmptyTrash(layout_); });
  first = EmptyTrash(layout_);
  other.join();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first + *second, 8u * 40 * 64);
  EXPECT_EQ(TrashEntries(), 0u);
}

}  // namespace
}  // namespace modelcache
