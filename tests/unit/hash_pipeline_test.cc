#include "agent/fill/file_writer.h"
#include "agent/fill/hash_pipeline.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/sha256.h"

namespace modelcache {
namespace {

// A fresh folder per test, removed afterwards.
class HashPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "hash-pipeline-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<std::byte> RandomBytes(size_t size, uint64_t seed) {
    std::mt19937_64 random(seed);
    std::vector<std::byte> bytes(size);
    for (auto& byte : bytes) byte = static_cast<std::byte>(random());
    return bytes;
  }
  static std::string DigestOf(std::span<const std::byte> bytes) {
    Sha256 digest;
    digest.Update(bytes);
    return digest.FinishHex();
  }
  static std::vector<std::byte> ReadAll(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> bytes(chars.size());
    std::transform(chars.begin(), chars.end(), bytes.begin(), [](char c) { return std::byte(c); });
    return bytes;
  }
  // Chunks of `data` from `start`, each `chunk` bytes (the last one shorter).
  static std::vector<ReadyChunk> Chunks(std::span<const std::byte> data, uint64_t start, size_t chunk) {
    std::vector<ReadyChunk> chunks;
    for (uint64_t offset = start; offset < data.size(); offset += chunk) {
      size_t length = std::min<size_t>(chunk, data.size() - offset);
      chunks.push_back(ReadyChunk{offset, data.subspan(offset, length), chunks.size()});
    }
    return chunks;
  }
  // Feeds `chunks` to a pipeline in the given order, writing every run as soon as one is
  // ready, as the fill does; returns the runs' sizes in chunks.
  static std::vector<size_t> Feed(HashPipeline& pipeline, FileWriter& writer,
                                  const std::vector<ReadyChunk>& chunks) {
    std::vector<size_t> runs;
    for (const ReadyChunk& chunk : chunks) {
      pipeline.Add(chunk);
      std::vector<ReadyChunk> run = pipeline.TakeRun();
      while (!run.empty()) {
        EXPECT_TRUE(writer.WriteRun(run).ok());
        uint64_t bytes = 0;
        for (const auto& piece : run) bytes += piece.Length();
        pipeline.RunCommitted(bytes);
        runs.push_back(run.size());
        run = pipeline.TakeRun();
      }
    }
    return runs;
  }

  // Whether `dir_`'s file system accepts O_DIRECT (tmpfs before Linux 6.6 does not).
  bool DirectIoWorks() const {
    std::filesystem::path probe = dir_ / "probe";
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    ::close(fd);
    std::filesystem::remove(probe);
    return true;
  }
  // How many of the file's pages are in the page cache, for [offset, offset + length).
  static size_t ResidentPages(const std::filesystem::path& path, size_t offset, size_t length) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    void* map = ::mmap(nullptr, offset + length, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    EXPECT_NE(map, MAP_FAILED);
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> resident((offset + length + page - 1) / page);
    EXPECT_EQ(::mincore(map, offset + length, resident.data()), 0);
    ::munmap(map, offset + length);
    return static_cast<size_t>(std::count_if(resident.begin() + static_cast<ptrdiff_t>(offset / page),
                                             resident.end(), [](unsigned char bits) { return bits & 1; }));
  }

  std::filesystem::path dir_;
};

// Memory aligned for direct I/O, as the fill's chunk buffers are.
struct AlignedBytes {
  explicit AlignedBytes(std::span<const std::byte> content)
      : memory(static_cast<std::byte*>(std::aligned_alloc(FileWriter::kDirectIoAlignment,
                                                          (content.size() / 4096 + 1) * 4096))),
        bytes(memory.get(), content.size()) {
    std::copy(content.begin(), content.end(), bytes.begin());
  }
  struct Free {
    void operator()(std::byte* memory) const { std::free(memory); }
  };
  std::unique_ptr<std::byte[], Free> memory;
  std::span<std::byte> bytes;
};

TEST_F(HashPipelineTest, RunStartsOnlyAtCommittedOffset) {
  std::vector<std::byte> data = RandomBytes(300, 1);
  HashPipeline pipeline;
  pipeline.Add(ReadyChunk{100, std::span(data).subspan(100, 100), 1});
  pipeline.Add(ReadyChunk{200, std::span(data).subspan(200, 100), 2});
  EXPECT_TRUE(pipeline.TakeRun().empty());
  EXPECT_EQ(pipeline.waiting(), 2u);

  pipeline.Add(ReadyChunk{0, std::span(data).subspan(0, 100), 0});
  std::vector<ReadyChunk> run = pipeline.TakeRun();
  ASSERT_EQ(run.size(), 3u);
  EXPECT_EQ(run[0].offset, 0u);
  EXPECT_EQ(run[1].offset, 100u);
  EXPECT_EQ(run[2].offset, 200u);
  EXPECT_EQ(pipeline.waiting(), 0u);
}

TEST_F(HashPipelineTest, OnlyOneRunIsOutAtATime) {
  std::vector<std::byte> data = RandomBytes(200, 2);
  HashPipeline pipeline;
  pipeline.Add(ReadyChunk{0, std::span(data).subspan(0, 100), 0});
  ASSERT_EQ(pipeline.TakeRun().size(), 1u);
  EXPECT_TRUE(pipeline.run_out());

  pipeline.Add(ReadyChunk{100, std::span(data).subspan(100, 100), 1});
  EXPECT_TRUE(pipeline.TakeRun().empty()) << "a second run while the first is being written";

  pipeline.RunCommitted(100);
  EXPECT_EQ(pipeline.committed_bytes(), 100u);
  std::vector<ReadyChunk> run = pipeline.TakeRun();
  ASSERT_EQ(run.size(), 1u);
  EXPECT_EQ(run[0].offset, 100u);
}

TEST_F(HashPipelineTest, OutOfOrderChunksAreHashedInFileOrder) {
  std::vector<std::byte> data = RandomBytes((1 << 20) + 12345, 3);
  std::vector<ReadyChunk> chunks = Chunks(data, 0, 64 << 10);
  std::shuffle(chunks.begin(), chunks.end(), std::mt19937_64(4));
  ASSERT_NE(chunks.front().offset, 0u) << "the shuffle should not start with the head chunk";

  std::filesystem::path path = dir_ / "model.bin";
  auto writer = FileWriter::Open(path, data.size(), 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  HashPipeline pipeline;
  std::vector<size_t> runs = Feed(pipeline, **writer, chunks);

  EXPECT_LT(runs.size(), chunks.size()) << "some runs should cover several chunks";
  EXPECT_EQ(pipeline.committed_bytes(), data.size());
  ASSERT_TRUE((*writer)->complete());
  EXPECT_EQ((*writer)->Sha256Hex(), DigestOf(data));
  EXPECT_EQ(ReadAll(path), data);
}

TEST_F(HashPipelineTest, ChunksWrittenInAnyOrderAreHashedInFileOrder) {
  std::vector<std::byte> data = RandomBytes((1 << 20) + 1000, 7);
  AlignedBytes aligned(data);
  std::vector<ReadyChunk> chunks = Chunks(aligned.bytes, 0, 256 << 10);
  std::vector<ReadyChunk> shuffled = chunks;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(8));

  std::filesystem::path path = dir_ / "any-order.bin";
  auto writer = FileWriter::Open(path, data.size(), 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (const ReadyChunk& chunk : shuffled) {
    ASSERT_TRUE((*writer)->WriteAt(chunk.offset, chunk.data).ok());
  }
  EXPECT_FALSE((*writer)->complete()) << "written is not hashed";
  ASSERT_TRUE((*writer)->HashRun(std::span(chunks).first(2)).ok());
  EXPECT_FALSE((*writer)->complete());
  ASSERT_TRUE((*writer)->HashRun(std::span(chunks).subspan(2)).ok());
  ASSERT_TRUE((*writer)->complete());
  EXPECT_EQ((*writer)->Sha256Hex(), DigestOf(data));
  EXPECT_EQ(ReadAll(path), data);
}

TEST_F(HashPipelineTest, HashRunOutOfOrderIsRefused) {
  std::vector<std::byte> data = RandomBytes(200, 9);
  auto writer = FileWriter::Open(dir_ / "x", data.size(), 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<ReadyChunk> run = {ReadyChunk{100, std::span(data).subspan(100, 100), 0}};
  EXPECT_FALSE((*writer)->HashRun(run).ok());
}

TEST_F(HashPipelineTest, WritePastTheSizeIsRefused) {
  std::vector<std::byte> data = RandomBytes(200, 10);
  auto writer = FileWriter::Open(dir_ / "x", 150, 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_FALSE((*writer)->WriteAt(100, data).ok());
  EXPECT_EQ(std::filesystem::file_size(dir_ / "x"), 150u);
}

TEST_F(HashPipelineTest, WholeAlignedBlocksBypassThePageCache) {
  if (!DirectIoWorks()) GTEST_SKIP() << "the temp folder's file system has no O_DIRECT";
  const size_t blocks = 256 * 4096;
  std::vector<std::byte> data = RandomBytes(blocks + 100, 11);
  AlignedBytes aligned(data);
  std::filesystem::path path = dir_ / "direct.bin";
  auto writer = FileWriter::Open(path, data.size(), 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->WriteAt(0, aligned.bytes).ok());

  // Buffered writes leave every page cached; the direct ones none. The partial last block
  // cannot go direct.
  EXPECT_EQ(ResidentPages(path, 0, blocks), 0u);
  EXPECT_EQ(ResidentPages(path, blocks, 100), 1u);
  ASSERT_TRUE((*writer)->HashRun(std::vector<ReadyChunk>{ReadyChunk{0, aligned.bytes, 0}}).ok());
  EXPECT_EQ((*writer)->Sha256Hex(), DigestOf(data));
  EXPECT_EQ(ReadAll(path), data);
}

TEST_F(HashPipelineTest, WithoutDirectIoEveryWriteGoesThroughTheCache) {
  const size_t blocks = 64 * 4096;
  std::vector<std::byte> data = RandomBytes(blocks, 13);
  AlignedBytes aligned(data);
  std::filesystem::path path = dir_ / "buffered.bin";
  auto writer = FileWriter::Open(path, data.size(), 0, /*direct_io=*/false);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->WriteAt(0, aligned.bytes).ok());
  EXPECT_EQ(ResidentPages(path, 0, blocks), blocks / 4096);
}

TEST_F(HashPipelineTest, UnalignedMemoryIsWrittenThroughTheCache) {
  std::vector<std::byte> data = RandomBytes(64 * 4096 + 1, 12);
  AlignedBytes aligned(data);
  std::filesystem::path path = dir_ / "unaligned.bin";
  auto writer = FileWriter::Open(path, 64 * 4096, 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::span<const std::byte> shifted = std::span<const std::byte>(aligned.bytes).subspan(1);
  ASSERT_TRUE((*writer)->WriteAt(0, shifted).ok());
  ASSERT_TRUE((*writer)->HashRun(std::vector<ReadyChunk>{ReadyChunk{0, shifted, 0}}).ok());
  EXPECT_EQ((*writer)->Sha256Hex(), DigestOf(shifted));
  EXPECT_EQ(ReadAll(path), std::vector<std::byte>(shifted.begin(), shifted.end()));
}

TEST_F(HashPipelineTest, OpenPreallocatesTheFile) {
  std::filesystem::path path = dir_ / "big.bin";
  auto writer = FileWriter::Open(path, 5'000'000, 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_EQ(std::filesystem::file_size(path), 5'000'000u);
  EXPECT_FALSE((*writer)->complete());
}

TEST_F(HashPipelineTest, ResumeKeepsThePrefixAndHashesIt) {
  std::vector<std::byte> data = RandomBytes(500'000, 5);
  std::filesystem::path path = dir_ / "resumed.bin";
  const uint64_t prefix = 200'000;
  {
    auto first = FileWriter::Open(path, data.size(), 0);
    ASSERT_TRUE(first.ok()) << first.status();
    HashPipeline pipeline;
    Feed(pipeline, **first, Chunks(std::span(data).first(prefix), 0, 50'000));
    EXPECT_EQ(pipeline.committed_bytes(), prefix);
  }
  auto second = FileWriter::Open(path, data.size(), prefix);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->resumed_bytes(), prefix);
  HashPipeline pipeline(prefix);
  Feed(pipeline, **second, Chunks(data, prefix, 70'000));
  ASSERT_TRUE((*second)->complete());
  EXPECT_EQ((*second)->Sha256Hex(), DigestOf(data));
  EXPECT_EQ(ReadAll(path), data);
}

TEST_F(HashPipelineTest, ResumeStartsOverWhenTheFileIsShorterThanThePrefix) {
  std::filesystem::path path = dir_ / "short.bin";
  std::ofstream(path) << "only a few bytes";
  auto writer = FileWriter::Open(path, 1000, 500);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_EQ((*writer)->resumed_bytes(), 0u);
  EXPECT_EQ(std::filesystem::file_size(path), 1000u);
}

TEST_F(HashPipelineTest, ResumeHashesChunksWrittenPastThePrefixFromDisk) {
  // An interrupted fill committed [0, 100000) and wrote [300000, 400000) before it died; the
  // journal says so. The resumed fill keeps both, fetches the rest and hashes every byte in
  // order, the written chunk read back from the file.
  std::vector<std::byte> data = RandomBytes(500'000, 7);
  std::filesystem::path path = dir_ / "gappy.bin";
  {
    auto first = FileWriter::Open(path, data.size(), 0);
    ASSERT_TRUE(first.ok()) << first.status();
    HashPipeline pipeline;
    Feed(pipeline, **first, Chunks(std::span(data).first(100'000), 0, 50'000));
    ASSERT_TRUE((*first)->WriteAt(300'000, std::span(data).subspan(300'000, 100'000)).ok());
    pipeline.Add(ReadyChunk{300'000, std::span(data).subspan(300'000, 100'000), 9});
    EXPECT_TRUE(pipeline.TakeRun().empty()) << "waits for [100000, 300000)";
    EXPECT_EQ(pipeline.Uncommitted(), (std::vector<ByteRange>{{300'000, 100'000}}));
  }
  auto second = FileWriter::Open(path, data.size(), 100'000, /*direct_io=*/true,
                                 /*keep_past_prefix=*/true);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->resumed_bytes(), 100'000u);
  ASSERT_TRUE((*second)->kept_past_prefix());
  HashPipeline pipeline(100'000);
  pipeline.Add(ReadyChunk{.offset = 300'000, .on_disk_bytes = 100'000});
  EXPECT_EQ(pipeline.Uncommitted(), (std::vector<ByteRange>{{300'000, 100'000}}));
  std::vector<ReadyChunk> missing = Chunks(std::span(data).first(300'000), 100'000, 70'000);
  std::vector<ReadyChunk> tail = Chunks(data, 400'000, 70'000);
  missing.insert(missing.end(), tail.begin(), tail.end());
  Feed(pipeline, **second, missing);
  ASSERT_TRUE((*second)->complete());
  EXPECT_EQ((*second)->Sha256Hex(), DigestOf(data));
  EXPECT_EQ(ReadAll(path), data);
  EXPECT_TRUE(pipeline.Uncommitted().empty());
}

TEST_F(HashPipelineTest, ResumeDropsWrittenChunksOfAFileOfAnotherSize) {
  std::filesystem::path path = dir_ / "resized.bin";
  std::vector<std::byte> data = RandomBytes(1000, 8);
  {
    auto first = FileWriter::Open(path, 1000, 0);
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE((*first)->WriteAt(0, data).ok());
  }
  auto second = FileWriter::Open(path, 2000, 0, true, /*keep_past_prefix=*/true);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE((*second)->kept_past_prefix());
  EXPECT_EQ(std::filesystem::file_size(path), 2000u);
  auto third = FileWriter::Open(path, 2000, 0, true, /*keep_past_prefix=*/true);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_TRUE((*third)->kept_past_prefix()) << "same size now";
}

TEST_F(HashPipelineTest, EmptyFileIsCompleteAtOnce) {
  std::filesystem::path path = dir_ / "empty";
  auto writer = FileWriter::Open(path, 0, 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_TRUE((*writer)->complete());
  EXPECT_EQ((*writer)->Sha256Hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST_F(HashPipelineTest, RunOutOfOrderIsRefused) {
  std::vector<std::byte> data = RandomBytes(200, 6);
  auto writer = FileWriter::Open(dir_ / "x", data.size(), 0);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<ReadyChunk> run = {ReadyChunk{100, std::span(data).subspan(100, 100), 0}};
  EXPECT_FALSE((*writer)->WriteRun(run).ok());
}

}  // namespace
}  // namespace modelcache
