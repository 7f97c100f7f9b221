#include "agent/fill/chunk_planner.h"

#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace modelcache {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint64_t kMiB = 1 << 20;

TEST(ChunkPlanner, SplitsAFileIntoChunksOfChunkSize) {
  std::vector<uint64_t> sizes = {3 * kMiB};
  auto chunks = PlanChunks(sizes, kMiB);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  EXPECT_THAT(*chunks, ElementsAre(PlannedChunk{0, 0, kMiB}, PlannedChunk{0, kMiB, kMiB},
                                   PlannedChunk{0, 2 * kMiB, kMiB}));
}

TEST(ChunkPlanner, LastChunkIsShort) {
  std::vector<uint64_t> sizes = {2 * kMiB + 5};
  auto chunks = PlanChunks(sizes, kMiB);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ(chunks->back(), (PlannedChunk{0, 2 * kMiB, 5}));
}

TEST(ChunkPlanner, FileSmallerThanAChunkIsOneChunk) {
  std::vector<uint64_t> sizes = {10};
  auto chunks = PlanChunks(sizes, kMiB);
  ASSERT_TRUE(chunks.ok());
  EXPECT_THAT(*chunks, ElementsAre(PlannedChunk{0, 0, 10}));
}

TEST(ChunkPlanner, ZeroSizeFileHasNoChunk) {
  std::vector<uint64_t> sizes = {0, 7, 0};
  auto chunks = PlanChunks(sizes, 4);
  ASSERT_TRUE(chunks.ok());
  EXPECT_THAT(*chunks, ElementsAre(PlannedChunk{1, 0, 4}, PlannedChunk{1, 4, 3}));
}

TEST(ChunkPlanner, FilesComeInGivenOrderAndChunksByOffset) {
  std::vector<uint64_t> sizes = {5, 3, 4};
  auto chunks = PlanChunks(sizes, 2);
  ASSERT_TRUE(chunks.ok());
  EXPECT_THAT(*chunks, ElementsAre(PlannedChunk{0, 0, 2}, PlannedChunk{0, 2, 2}, PlannedChunk{0, 4, 1},
                                   PlannedChunk{1, 0, 2}, PlannedChunk{1, 2, 1}, PlannedChunk{2, 0, 2},
                                   PlannedChunk{2, 2, 2}));
}

TEST(ChunkPlanner, ResumeStartsAfterTheCommittedPrefix) {
  std::vector<uint64_t> sizes = {10, 6, 4};
  std::vector<uint64_t> committed = {8, 6, 0};
  auto chunks = PlanChunks(sizes, committed, 4);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  // File 1 is complete: no chunk.
  EXPECT_THAT(*chunks, ElementsAre(PlannedChunk{0, 8, 2}, PlannedChunk{2, 0, 4}));
}

TEST(ChunkPlanner, NothingLeftWhenEverythingIsCommitted) {
  std::vector<uint64_t> sizes = {10, 0};
  std::vector<uint64_t> committed = {10, 0};
  auto chunks = PlanChunks(sizes, committed, 4);
  ASSERT_TRUE(chunks.ok());
  EXPECT_THAT(*chunks, IsEmpty());
}

TEST(ChunkPlanner, RejectsZeroChunkSize) {
  std::vector<uint64_t> sizes = {10};
  EXPECT_EQ(PlanChunks(sizes, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChunkPlanner, RejectsCommittedPrefixBeyondTheFile) {
  std::vector<uint64_t> sizes = {10, 5};
  std::vector<uint64_t> committed = {0, 6};
  auto chunks = PlanChunks(sizes, committed, 4);
  EXPECT_EQ(chunks.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(chunks.status().message()), ::testing::HasSubstr("file 1"));
}

TEST(ChunkPlanner, RejectsListsOfDifferentLength) {
  std::vector<uint64_t> sizes = {10, 5};
  std::vector<uint64_t> committed = {0};
  EXPECT_EQ(PlanChunks(sizes, committed, 4).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChunkPlanner, ChunksCoverEveryRemainingByteExactlyOnce) {
  std::mt19937_64 random(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<uint64_t> sizes(random() % 6);
    std::vector<uint64_t> committed(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      sizes[i] = random() % 100;
      committed[i] = sizes[i] == 0 ? 0 : random() % (sizes[i] + 1);
    }
    const uint64_t chunk_size = 1 + random() % 17;
    auto chunks = PlanChunks(sizes, committed, chunk_size);
    ASSERT_TRUE(chunks.ok());
    std::vector<uint64_t> next(committed);  // each file's chunks must be contiguous from its prefix
    for (const PlannedChunk& chunk : *chunks) {
      ASSERT_LT(chunk.file_index, sizes.size());
      EXPECT_EQ(chunk.offset, next[chunk.file_index]);
      EXPECT_GT(chunk.length, 0u);
      EXPECT_LE(chunk.length, chunk_size);
      next[chunk.file_index] += chunk.length;
    }
    EXPECT_EQ(next, sizes);
  }
}

}  // namespace
}  // namespace modelcache
