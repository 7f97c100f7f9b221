// kube/token_source.h: bound ServiceAccount tokens rotate; the client must follow the file.
#include "kube/token_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace modelcache::kube {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteTestFile;

// As the kubelet does it: a new file renamed over the old one.
void Rotate(const std::filesystem::path& path, const std::string& token) {
  WriteTestFile(path.string() + ".new", token);
  std::filesystem::rename(path.string() + ".new", path);
}

TEST(KubeTokenSource, FileIsReadAgainWhenItChanges) {
  TempDir dir;
  const auto path = dir.Path() / "token";
  WriteTestFile(path, "first\n");
  TokenSource tokens = TokenSource::FromFile(path);
  ASSERT_EQ(tokens.Current().value_or(""), "first") << "trailing newline trimmed";
  Rotate(path, "secnd");  // same size, maybe the same mtime second: the inode tells
  EXPECT_EQ(tokens.Current().value_or(""), "secnd");
}

TEST(KubeTokenSource, ReloadAfter401SeesARotationTheStatMissed) {
  TempDir dir;
  const auto path = dir.Path() / "token";
  WriteTestFile(path, "aaaa");
  TokenSource tokens = TokenSource::FromFile(path);
  ASSERT_EQ(tokens.Current().value_or(""), "aaaa");
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  // Rewritten in place with the same size, and the old modification time put back: stat()
  // sees no change.
  WriteTestFile(path, "bbbb");
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  EXPECT_EQ(tokens.Current().value_or(""), "aaaa") << "unchanged by stat";
  auto changed = tokens.Reload("aaaa");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(tokens.Current().value_or(""), "bbbb");
  auto again = tokens.Reload("bbbb");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "the same token: a retry cannot help";
}

TEST(KubeTokenSource, MissingOrEmptyFileIsAClearError) {
  TempDir dir;
  TokenSource missing = TokenSource::FromFile(dir.Path() / "absent");
  auto token = missing.Current();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(token.status().message()), HasSubstr("absent"));
  WriteTestFile(dir.Path() / "empty", "\n");
  TokenSource empty = TokenSource::FromFile(dir.Path() / "empty");
  auto none = empty.Current();
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("is empty"));
}

TEST(KubeTokenSource, FixedAndNoToken) {
  TokenSource fixed = TokenSource::Fixed("t");
  EXPECT_EQ(fixed.Current().value_or(""), "t");
  EXPECT_FALSE(fixed.Reload("t").value_or(true));
  EXPECT_EQ(fixed.Describe(), "fixed token");
  TokenSource none;
  EXPECT_EQ(none.Current().value_or("x"), "");
  EXPECT_EQ(none.Describe(), "no token");
}

}  // namespace
}  // namespace modelcache::kube
