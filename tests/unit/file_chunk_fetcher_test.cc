#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/loop/event_loop.h"
#include "agent/source/chunk_fetcher.h"
#include "agent/source/file_tree.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::PollUntil;
using testing::TempDir;
using testing::WriteTestFile;

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 engine(seed);
  std::string bytes(size, '\0');
  for (char& byte : bytes) byte = static_cast<char>(engine());
  return bytes;
}

std::string AsString(const std::vector<std::byte>& buffer) {
  return std::string(reinterpret_cast<const char*>(buffer.data()), buffer.size());
}

class FileChunkFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.Start();
    // The fetcher reads through the listing's FileTree: the test's folder is the source,
    // and the allowed root (fileSources) is the folder above it.
    ASSERT_TRUE(std::filesystem::create_directory(source_dir_));
    absl::StatusOr<std::shared_ptr<const FileTree>> tree =
        FileTree::Open(source_dir_, std::vector<std::filesystem::path>{dir_.Path()});
    ASSERT_TRUE(tree.ok()) << tree.status();
    RunOnLoop([&] { fetcher_ = MakeFileChunkFetcher(loop_, FillSettings{}, *tree); });
  }
  void TearDown() override {
    RunOnLoop([&] { fetcher_.reset(); });
    loop_.Stop();
  }

  void RunOnLoop(std::function<void()> task) {
    auto finished = std::make_shared<std::promise<void>>();
    loop_.Post([task, finished] {
      task();
      finished->set_value();
    });
    ASSERT_EQ(finished->get_future().wait_for(30s), std::future_status::ready);
  }

  SourceFile Local(const std::string& name, const std::string& content) {
    SourceFile file;
    file.path = name;
    file.location = (source_dir_ / name).string();
    file.size = content.size();
    EXPECT_TRUE(WriteTestFile(file.location, content));
    return file;
  }

  absl::Status Fetch(const SourceFile& file, uint64_t offset, std::span<std::byte> buffer) {
    auto result = std::make_shared<std::promise<absl::Status>>();
    loop_.Post([&, result] {
      fetcher_->Fetch(ChunkRequest{&file, offset, buffer}, [result](absl::Status status) {
        result->set_value(std::move(status));
      });
    });
    auto future = result->get_future();
    if (future.wait_for(30s) != std::future_status::ready) return absl::InternalError("test: no answer in 30 s");
    return future.get();
  }

  TempDir dir_;
  const std::filesystem::path source_dir_ = dir_.Path() / "model";
  EventLoop loop_;
  std::unique_ptr<ChunkFetcher> fetcher_;  // loop thread only
};

TEST_F(FileChunkFetcherTest, ReadsEveryRangeByteForByte) {
  const std::string content = RandomBytes((5 << 20) + 17, 1);  // more than one internal slice
  SourceFile file = Local("weights.bin", content);
  const uint64_t chunk = 2 << 20;
  for (uint64_t offset = 0; offset < content.size(); offset += chunk) {
    std::vector<std::byte> buffer(std::min<uint64_t>(chunk, content.size() - offset));
    absl::Status status = Fetch(file, offset, buffer);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(AsString(buffer), content.substr(offset, buffer.size())) << "offset " << offset;
  }
}

// A chunk buffer as the fill allocates it: aligned for direct I/O.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size)
      : memory_(static_cast<std::byte*>(std::aligned_alloc(4096, (size / 4096 + 1) * 4096))),
        size_(size) {}
  std::span<std::byte> span() { return {memory_.get(), size_}; }
  std::string AsString() const { return std::string(reinterpret_cast<const char*>(memory_.get()), size_); }

 private:
  struct Free {
    void operator()(std::byte* memory) const { std::free(memory); }
  };
  std::unique_ptr<std::byte[], Free> memory_;
  size_t size_;
};

// Pages of the file in the page cache.
size_t ResidentPages(const std::string& path, size_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  EXPECT_NE(map, MAP_FAILED);
  std::vector<unsigned char> resident((size + 4095) / 4096);
  EXPECT_EQ(::mincore(map, size, resident.data()), 0);
  ::munmap(map, size);
  return static_cast<size_t>(std::count_if(resident.begin(), resident.end(),
                                           [](unsigned char bits) { return bits & 1; }));
}

// The file system type of `path`, for a skip message ("file system 0x794c7630").
std::string FileSystemName(const std::string& path) {
  struct statfs info {};
  if (::statfs(path.c_str(), &info) != 0) return "file system unknown";
  return absl::StrCat("file system 0x", absl::Hex(static_cast<uint64_t>(info.f_type)));
}

TEST_F(FileChunkFetcherTest, AlignedBuffersReadEveryByteIncludingAPartialLastBlock) {
  const std::string content = RandomBytes((3 << 20) + 123, 4);
  SourceFile file = Local("weights.bin", content);
  for (uint64_t offset : {uint64_t{0}, uint64_t{5 * 4096}}) {
    AlignedBuffer buffer(content.size() - offset);
    absl::Status status = Fetch(file, offset, buffer.span());
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(buffer.AsString(), content.substr(offset)) << "offset " << offset;
  }
}

TEST_F(FileChunkFetcherTest, AlignedReadsLeaveThePageCacheAlone) {
  const std::string content = RandomBytes(1 << 20, 5);
  SourceFile file = Local("weights.bin", content);
  int fd = ::open(file.location.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  int direct = ::open(file.location.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (direct >= 0) ::close(direct);
  ::fsync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (direct < 0) GTEST_SKIP() << "the temp folder's file system has no O_DIRECT";
  // The test can only tell a direct read from a cached one on a file whose pages it could drop
  // first. Some environments keep them (an image build under buildah, a file system that
  // ignores POSIX_FADV_DONTNEED): that says nothing about the fetcher, so the test skips.
  if (size_t resident = ResidentPages(file.location, content.size()); resident != 0) {
    GTEST_SKIP() << "could not empty the page cache of " << file.location << " (" << resident
                 << " of " << content.size() / 4096 << " pages stay after fsync and POSIX_FADV_DONTNEED, "
                 << FileSystemName(file.location) << "): cannot tell a direct read from a cached one here";
  }

  AlignedBuffer buffer(content.size());
  absl::Status status = Fetch(file, 0, buffer.span());
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(buffer.AsString(), content);
  EXPECT_EQ(ResidentPages(file.location, content.size()), 0u) << "the read went through the cache";
}

TEST_F(FileChunkFetcherTest, ManyReadsInFlightAllComplete) {
  const std::string content = RandomBytes(64 * 4096, 2);
  SourceFile file = Local("weights.bin", content);
  std::vector<std::vector<std::byte>> buffers(64, std::vector<std::byte>(4096));
  std::vector<absl::Status> results(64);
  auto all_done = std::make_shared<std::promise<void>>();
  int finished = 0;  // loop thread only
  size_t most_in_flight = 0;
  loop_.Post([&] {
    for (size_t i = 0; i < buffers.size(); ++i) {
      fetcher_->Fetch(ChunkRequest{&file, i * 4096, buffers[i]}, [&, i](absl::Status status) {
        results[i] = std::move(status);
        if (++finished == 64) all_done->set_value();
      });
    }
    most_in_flight = fetcher_->InFlight();
  });
  ASSERT_EQ(all_done->get_future().wait_for(30s), std::future_status::ready);
  EXPECT_EQ(most_in_flight, 64u);
  for (size_t i = 0; i < buffers.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i];
    EXPECT_EQ(AsString(buffers[i]), content.substr(i * 4096, 4096));
  }
}

TEST_F(FileChunkFetcherTest, MissingFileIsNotFoundAndTheMessageNamesPathAndRange) {
  SourceFile file;
  file.location = (source_dir_ / "absent.bin").string();
  file.size = 100;
  std::vector<std::byte> buffer(10);
  absl::Status status = Fetch(file, 20, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(absl::StrCat("read ", file.location, " bytes=20-29")));
}

TEST_F(FileChunkFetcherTest, UnreadableFileIsPermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  SourceFile file = Local("secret.bin", "data");
  ASSERT_EQ(::chmod(file.location.c_str(), 0), 0);
  std::vector<std::byte> buffer(4);
  EXPECT_EQ(Fetch(file, 0, buffer).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(FileChunkFetcherTest, FileShorterThanItsListingIsAborted) {
  SourceFile file = Local("weights.bin", RandomBytes(1000, 3));
  file.size = 2000;  // the listing saw a longer file
  std::vector<std::byte> buffer(500);
  absl::Status status = Fetch(file, 1500, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("file changed at the source"));
}

TEST_F(FileChunkFetcherTest, CancelledReadNeverCallsDone) {
  SourceFile file = Local("weights.bin", RandomBytes(1 << 20, 6));
  std::vector<std::byte> buffer(file.size);
  std::atomic<bool> done_called{false};
  size_t in_flight = 99;
  // Cancelled in the same loop turn as the Fetch: whether the worker has read yet or not, its
  // completion comes back to the loop only afterwards.
  RunOnLoop([&] {
    uint64_t id = fetcher_->Fetch(ChunkRequest{&file, 0, buffer}, [&](absl::Status) { done_called = true; });
    fetcher_->Cancel(id);
    in_flight = fetcher_->InFlight();
  });
  EXPECT_EQ(in_flight, 0u);
  // The cancelled work has finished once a later one completed after its completion was handled.
  auto barrier = std::make_shared<std::promise<void>>();
  loop_.Post([&, barrier] { loop_.RunBlocking([] {}, [barrier] { barrier->set_value(); }); });
  ASSERT_EQ(barrier->get_future().wait_for(10s), std::future_status::ready);
  RunOnLoop([] {});
  EXPECT_FALSE(done_called);
}

TEST_F(FileChunkFetcherTest, FifoIsRefusedWithoutWaitingForAWriter) {
  SourceFile file;
  file.path = "fifo";
  file.location = (source_dir_ / "fifo").string();
  file.size = 100;
  ASSERT_EQ(::mkfifo(file.location.c_str(), 0600), 0);
  std::vector<std::byte> buffer(100);
  absl::Status status = Fetch(file, 0, buffer);  // no writer ever comes: a blocking open would hang
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("FIFO"));
  EXPECT_THAT(std::string(status.message()), HasSubstr(file.location));
}

TEST_F(FileChunkFetcherTest, LinkSwappedInAfterTheListingIsNotFollowedOut) {
  SourceFile file = Local("weights.bin", "listed bytes");
  ASSERT_TRUE(WriteTestFile(dir_.Path() / "secret.bin", "secret bytes"));  // outside the source
  std::filesystem::remove(file.location);
  std::filesystem::create_symlink("../secret.bin", file.location);
  std::vector<std::byte> buffer(file.size);
  absl::Status status = Fetch(file, 0, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("leads outside"));
  EXPECT_NE(AsString(buffer), "secret bytes");
}

TEST(FileChunkFetcher, WithoutAListedTreeEveryReadFails) {
  EventLoop loop;
  loop.Start();
  std::unique_ptr<ChunkFetcher> fetcher;
  SourceFile file;
  file.location = "/etc/hostname";
  file.size = 1;
  std::vector<std::byte> buffer(1);
  auto result = std::make_shared<std::promise<absl::Status>>();
  loop.Post([&, result] {
    fetcher = MakeFileChunkFetcher(loop, FillSettings{}, nullptr);
    fetcher->Fetch(ChunkRequest{&file, 0, buffer}, [result](absl::Status status) { result->set_value(status); });
  });
  auto future = result->get_future();
  ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(future.get().code(), absl::StatusCode::kFailedPrecondition);
  auto destroyed = std::make_shared<std::promise<void>>();
  loop.Post([&, destroyed] {
    fetcher.reset();
    destroyed->set_value();
  });
  destroyed->get_future().wait();
  loop.Stop();
}

}  // namespace
}  // namespace modelcache
