#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "agent/store/volume_id.h"
#include "common/fs.h"
#include "common/random_id.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

TEST(VolumeId, FirstCallCreatesAndLaterCallsReturnTheSame) {
  testing::TempDir dir;
  CacheLayout layout(dir.Path() / "cache");
  testing::FakeClock clock(FromUnixMillis(1'700'000'000'123));
  absl::StatusOr<VolumeIdRecord> first = EnsureVolumeIdRecord(layout, "node-a", clock);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(IsHexId128(first->id)) << first->id;
  EXPECT_EQ(first->creator_node, "node-a");
  EXPECT_EQ(ToUnixMillis(first->created), 1'700'000'000'123);
  EXPECT_TRUE(fs::exists(layout.VolumeIdPath()));

  testing::FakeClock later(FromUnixMillis(1'800'000'000'000));
  absl::StatusOr<VolumeIdRecord> second = EnsureVolumeIdRecord(layout, "node-b", later);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(second->creator_node, "node-a");
  EXPECT_EQ(second->created, first->created);

  absl::StatusOr<std::string> id = EnsureVolumeId(layout, "node-c");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, first->id);
}

TEST(VolumeId, SeparateVolumesGetDifferentIds) {
  testing::TempDir dir;
  absl::StatusOr<std::string> a = EnsureVolumeId(CacheLayout(dir.Path() / "a"), "node");
  absl::StatusOr<std::string> b = EnsureVolumeId(CacheLayout(dir.Path() / "b"), "node");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(VolumeId, ConcurrentCreatorsAgreeOnOneId) {
  for (int round = 0; round < 10; ++round) {
    testing::TempDir dir;
    CacheLayout layout(dir.Path() / "cache");
    constexpr int kThreads = 8;
    std::vector<absl::StatusOr<std::string>> results(kThreads, absl::UnknownError("not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&results, &layout, i] {
        results[i] = EnsureVolumeId(layout, "node-" + std::to_string(i));
      });
    }
    for (std::thread& thread : threads) thread.join();
    std::set<std::string> ids;
    for (const auto& result : results) {
      ASSERT_TRUE(result.ok()) << result.status();
      ids.insert(*result);
    }
    EXPECT_EQ(ids.size(), 1u);
    absl::StatusOr<VolumeIdRecord> record = ReadVolumeId(layout);
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ(record->id, *ids.begin());
    // No temporary files are left behind by the losers.
    size_t entries = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(layout.Root())) ++entries;
    EXPECT_EQ(entries, 1u);
  }
}

TEST(VolumeId, MissingIsNotFound) {
  testing::TempDir dir;
  EXPECT_EQ(ReadVolumeId(CacheLayout(dir.Path())).status().code(), absl::StatusCode::kNotFound);
}

TEST(VolumeId, CorruptIdIsDataLossNamingThePathAndIsNotReplaced) {
  testing::TempDir dir;
  CacheLayout layout(dir.Path());
  for (std::string_view contents :
       {"id=XYZ\ncreated_unix_ms=1\ncreator_node=n\n", "garbage", "",
        "id=0123456789abcdef0123456789abcdef\ncreator_node=n\n",
        "id=0123456789abcdef0123456789abcdef\ncreated_unix_ms=x\ncreator_node=n\n"}) {
    ASSERT_TRUE(WriteFileAtomic(layout.VolumeIdPath(), contents).ok());
    absl::StatusOr<std::string> id = EnsureVolumeId(layout, "node");
    EXPECT_EQ(id.status().code(), absl::StatusCode::kDataLoss) << contents;
    EXPECT_NE(id.status().message().find(layout.VolumeIdPath().string()), absl::string_view::npos)
        << id.status();
    EXPECT_EQ(*ReadFileToString(layout.VolumeIdPath()), contents);
  }
}

TEST(VolumeId, NodeNameWithNewlineIsRejected) {
  testing::TempDir dir;
  CacheLayout layout(dir.Path());
  EXPECT_EQ(EnsureVolumeId(layout, "a\nid=forged").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EnsureVolumeId(layout, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(layout.VolumeIdPath()));
}

}  // namespace
}  // namespace modelcache
