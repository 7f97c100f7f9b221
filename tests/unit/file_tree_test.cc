#include "agent/fill/file_tree.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteTestFile;

std::string ReadAll(int fd) {
  std::string out;
  char buffer[256];
  ssize_t got = 0;
  while ((got = ::pread(fd, buffer, sizeof(buffer), static_cast<off_t>(out.size()))) > 0) {
    out.append(buffer, static_cast<size_t>(got));
  }
  return out;
}

// Both resolutions must give the same answers: openat2 where the kernel has it, the walk
// everywhere.
class OpenBeneathTest : public ::testing::TestWithParam<ResolveMethod> {
 protected:
  void SetUp() override {
    if (GetParam() == ResolveMethod::kOpenat2 && DetectResolveMethod() != ResolveMethod::kOpenat2) {
      GTEST_SKIP() << "openat2 is not available to this process (kernel before 5.6, or seccomp)";
    }
    //   <dir>/secret.txt                 outside the folder
    //   <dir>/root/a/b.txt, root/c.txt   the folder (root_fd_); links are added by each test
    ASSERT_TRUE(WriteTestFile(dir_.Path() / "secret.txt", "secret"));
    ASSERT_TRUE(WriteTestFile(root() / "a" / "b.txt", "bee"));
    ASSERT_TRUE(WriteTestFile(root() / "c.txt", "sea"));
    root_fd_ = ::open(root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
  }
  void TearDown() override {
    if (root_fd_ >= 0) ::close(root_fd_);
  }

  fs::path root() const { return dir_.Path() / "root"; }

  // The file's contents when it opens beneath the root, else "errno N".
  std::string Open(const std::string& relative, int flags = O_RDONLY | O_NONBLOCK) {
    const int fd = OpenBeneath(root_fd_, relative, flags, GetParam());
    if (fd < 0) return "errno " + std::to_string(-fd);
    std::string contents = ReadAll(fd);
    ::close(fd);
    return contents;
  }
  static std::string Errno(int error) { return "errno " + std::to_string(error); }

  TempDir dir_;
  int root_fd_ = -1;
};

TEST_P(OpenBeneathTest, OpensPathsBeneathTheFolder) {
  EXPECT_EQ(Open("c.txt"), "sea");
  EXPECT_EQ(Open("a/b.txt"), "bee");
  EXPECT_EQ(Open("a/../c.txt"), "sea");
  EXPECT_EQ(Open("./a/./b.txt"), "bee");
  EXPECT_EQ(Open("missing"), Errno(ENOENT));
  EXPECT_EQ(Open("c.txt/x"), Errno(ENOTDIR));
}

TEST_P(OpenBeneathTest, DotDotAboveTheFolderIsExdev) {
  EXPECT_EQ(Open("../secret.txt"), Errno(EXDEV));
  EXPECT_EQ(Open("a/../../secret.txt"), Errno(EXDEV));
}

TEST_P(OpenBeneathTest, RelativeLinksInsideAreFollowed) {
  fs::create_symlink("../c.txt", root() / "a" / "to-c");
  fs::create_symlink("a", root() / "dir-link");
  fs::create_symlink("to-c", root() / "a" / "chain");
  EXPECT_EQ(Open("a/to-c"), "sea");
  EXPECT_EQ(Open("dir-link/b.txt"), "bee");
  EXPECT_EQ(Open("a/chain"), "sea");
  EXPECT_EQ(Open("dir-link/to-c"), "sea");
}

TEST_P(OpenBeneathTest, LinksOutAndAbsoluteLinksAreExdev) {
  fs::create_symlink("../../secret.txt", root() / "a" / "up");
  fs::create_symlink(dir_.Path() / "secret.txt", root() / "absolute");
  fs::create_symlink(root() / "c.txt", root() / "absolute-inside");
  fs::create_symlink("/etc", root() / "etc");
  EXPECT_EQ(Open("a/up"), Errno(EXDEV));
  EXPECT_EQ(Open("absolute"), Errno(EXDEV));
  EXPECT_EQ(Open("absolute-inside"), Errno(EXDEV)) << "absolute links are never followed";
  EXPECT_EQ(Open("etc/hostname"), Errno(EXDEV));
}

TEST_P(OpenBeneathTest, LinkLoopIsEloop) {
  fs::create_symlink("loop-b", root() / "loop-a");
  fs::create_symlink("loop-a", root() / "loop-b");
  EXPECT_EQ(Open("loop-a"), Errno(ELOOP));
}

TEST_P(OpenBeneathTest, ProcMagicLinksAreNotFollowed) {
  const int proc_self = ::open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (proc_self < 0) GTEST_SKIP() << "no /proc";
  // /proc/self/root is a magic link to "/": following it would leave the folder.
  const int fd = OpenBeneath(proc_self, "root/etc/hostname", O_RDONLY, GetParam());
  ::close(proc_self);
  EXPECT_TRUE(fd == -ELOOP || fd == -EXDEV) << fd;
  if (fd >= 0) ::close(fd);
}

TEST_P(OpenBeneathTest, DotIsTheFolderAndOPathWorksOnAFifoWithoutBlocking) {
  const int self = OpenBeneath(root_fd_, ".", O_RDONLY | O_DIRECTORY, GetParam());
  ASSERT_GE(self, 0);
  struct stat info {};
  ASSERT_EQ(::fstat(self, &info), 0);
  EXPECT_TRUE(S_ISDIR(info.st_mode));
  ::close(self);
  ASSERT_EQ(::mkfifo((root() / "pipe").c_str(), 0600), 0);
  const int path = OpenBeneath(root_fd_, "pipe", O_PATH, GetParam());
  ASSERT_GE(path, 0);
  ASSERT_EQ(::fstat(path, &info), 0);
  EXPECT_TRUE(S_ISFIFO(info.st_mode));
  ::close(path);
  const int read_end = OpenBeneath(root_fd_, "pipe", O_RDONLY | O_NONBLOCK, GetParam());  // no writer: would block
  EXPECT_GE(read_end, 0);
  if (read_end >= 0) ::close(read_end);
}

INSTANTIATE_TEST_SUITE_P(BothMethods, OpenBeneathTest,
                         ::testing::Values(ResolveMethod::kOpenat2, ResolveMethod::kWalk),
                         [](const ::testing::TestParamInfo<ResolveMethod>& info) {
                           return info.param == ResolveMethod::kOpenat2 ? "Openat2" : "Walk";
                         });

TEST(FileTree, ReadsListedFilesThroughTheSameResolution) {
  TempDir dir;
  ASSERT_TRUE(WriteTestFile(dir.Path() / "models" / "m" / "w.bin", "weights"));
  for (ResolveMethod method : {DetectResolveMethod(), ResolveMethod::kWalk}) {
    auto tree = FileTree::Open(dir.Path() / "models" / "m", std::vector<fs::path>{dir.Path() / "models"}, method);
    ASSERT_TRUE(tree.ok()) << tree.status();
    auto files = (*tree)->List();
    ASSERT_TRUE(files.ok()) << files.status();
    ASSERT_EQ(files->size(), 1u);
    auto fd = (*tree)->OpenForRead((*files)[0].location, /*direct=*/false);
    ASSERT_TRUE(fd.ok()) << fd.status();
    EXPECT_EQ(ReadAll(fd->get()), "weights");
    // A location the listing did not give is refused, whatever the path says.
    EXPECT_EQ((*tree)->OpenForRead("/etc/hostname", false).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((*tree)->OpenForRead((dir.Path() / "models" / "m" / ".." / ".." / "x").string(), false).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
}

TEST(FileTree, AFolderReplacedByALinkAfterTheListingIsNotFollowedOut) {
  TempDir dir;
  ASSERT_TRUE(WriteTestFile(dir.Path() / "models" / "m" / "sub" / "w.bin", "weights"));
  ASSERT_TRUE(WriteTestFile(dir.Path() / "outside" / "w.bin", "secret"));
  auto tree = FileTree::Open(dir.Path() / "models" / "m", std::vector<fs::path>{dir.Path() / "models"});
  ASSERT_TRUE(tree.ok()) << tree.status();
  auto files = (*tree)->List();
  ASSERT_TRUE(files.ok()) << files.status();
  fs::remove_all(dir.Path() / "models" / "m" / "sub");
  fs::create_symlink("../../outside", dir.Path() / "models" / "m" / "sub");
  auto fd = (*tree)->OpenForRead((*files)[0].location, false);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kPermissionDenied) << fd.status();
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("fileSources"));
}

TEST(FileTree, TheAllowedRootsOwnPathMayHoldLinks) {
  // The operator's folder is trusted as written, links in its own path included.
  TempDir dir;
  ASSERT_TRUE(WriteTestFile(dir.Path() / "real" / "m" / "w.bin", "weights"));
  fs::create_symlink(dir.Path() / "real", dir.Path() / "mnt");
  auto tree = FileTree::Open(dir.Path() / "mnt" / "m", std::vector<fs::path>{dir.Path() / "mnt"});
  ASSERT_TRUE(tree.ok()) << tree.status();
  auto files = (*tree)->List();
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->size(), 1u);
}

}  // namespace
}  // namespace modelcache
