#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

void WriteBytes(const fs::path& path, size_t bytes) {
  std::ofstream(path, std::ios::binary) << std::string(bytes, 'x');
}

TEST(ErrnoStatus, MapsCodesAndNamesPath) {
  EXPECT_EQ(ErrnoStatus(ENOSPC, "write", "/v/f").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus(EDQUOT, "write", "/v/f").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus(ENOENT, "open", "/v/f").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus(EACCES, "open", "/v/f").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EROFS, "open", "/v/f").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EEXIST, "mkdir", "/v/f").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus(ENOTEMPTY, "rename", "/v/f").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus(EIO, "read", "/v/f").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrnoStatus(ENOENT, "open", "/v/f").message(), "open /v/f: No such file or directory");
}

TEST(Fs, WriteFileAtomicReplacesAndLeavesNoTemporary) {
  testing::TempDir dir;
  fs::path file = dir.Path() / "state.json";
  ASSERT_TRUE(WriteFileAtomic(file, "first").ok());
  ASSERT_TRUE(WriteFileAtomic(file, "second, longer").ok());
  EXPECT_EQ(*ReadFileToString(file), "second, longer");
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.Path())) ++entries;
  EXPECT_EQ(entries, 1);
  struct stat info;
  ASSERT_EQ(::stat(file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
}

TEST(Fs, WriteFileAtomicIntoMissingDirectoryFailsWithPath) {
  testing::TempDir dir;
  absl::Status status = WriteFileAtomic(dir.Path() / "nope" / "f", "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(status.message()).find("nope"), std::string::npos);
}

TEST(Fs, ReadMissingFileIsNotFound) {
  testing::TempDir dir;
  EXPECT_EQ(ReadFileToString(dir.Path() / "missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(Fs, ReadsBinaryContents) {
  testing::TempDir dir;
  std::string contents("a\0b\xff", 4);
  ASSERT_TRUE(WriteFileAtomic(dir.Path() / "bin", contents).ok());
  EXPECT_EQ(*ReadFileToString(dir.Path() / "bin"), contents);
}

TEST(Fs, CreateDirectoriesMakesAllLevelsAndIsIdempotent) {
  testing::TempDir dir;
  fs::path deep = dir.Path() / "a" / "b" / "c";
  ASSERT_TRUE(CreateDirectories(deep).ok());
  EXPECT_TRUE(fs::is_directory(deep));
  EXPECT_TRUE(CreateDirectories(deep).ok());
  EXPECT_TRUE(FsyncDirectory(deep).ok());
}

TEST(Fs, CreateDirectoriesFailsOnAFile) {
  testing::TempDir dir;
  WriteBytes(dir.Path() / "file", 1);
  EXPECT_FALSE(CreateDirectories(dir.Path() / "file" / "sub").ok());
}

TEST(Fs, TreeSizeCountsRegularFilesOnly) {
  testing::TempDir dir;
  fs::path root = dir.Path() / "tree";
  fs::create_directories(root / "sub" / "deeper");
  WriteBytes(root / "a", 100);
  WriteBytes(root / "sub" / "b", 20);
  WriteBytes(root / "sub" / "deeper" / "c", 3);
  WriteBytes(dir.Path() / "outside", 5000);
  fs::create_symlink(dir.Path() / "outside", root / "link");
  EXPECT_EQ(*TreeSizeBytes(root), 123u);
  EXPECT_EQ(*TreeSizeBytes(root / "sub" / "b"), 20u);
  EXPECT_EQ(*TreeSizeBytes(dir.Path() / "missing"), 0u);
}

TEST(Fs, RemoveTreeDeletesEverythingButNotSymlinkTargets) {
  testing::TempDir dir;
  fs::path root = dir.Path() / "tree";
  fs::create_directories(root / "sub");
  WriteBytes(root / "sub" / "f", 10);
  fs::create_directories(dir.Path() / "keep");
  WriteBytes(dir.Path() / "keep" / "precious", 7);
  fs::create_directory_symlink(dir.Path() / "keep", root / "link");
  absl::StatusOr<uint64_t> freed = RemoveTreeCountingBytes(root);
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 10u);
  EXPECT_FALSE(fs::exists(root));
  EXPECT_TRUE(fs::exists(dir.Path() / "keep" / "precious"));
}

TEST(Fs, RemoveTreeOfMissingPathIsOk) {
  testing::TempDir dir;
  EXPECT_TRUE(RemoveTree(dir.Path() / "missing").ok());
  EXPECT_TRUE(RemoveTree(dir.Path() / "missing" / "deeper").ok());
}

TEST(Fs, FsyncMissingFileIsNotFound) {
  testing::TempDir dir;
  EXPECT_EQ(FsyncFile(dir.Path() / "missing").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace modelcache
