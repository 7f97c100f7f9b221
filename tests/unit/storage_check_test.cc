#include "agent/store/storage_check.h"

#include <gtest/gtest.h>
#include <sys/vfs.h>

#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

// The list of accepted types, kept apart from the implementation's table.
bool ExpectedAccepted(uint32_t magic) {
  switch (magic) {
    case 0x6969:      // nfs
    case 0xEF53:      // ext2/3/4
    case 0x58465342:  // xfs
    case 0x9123683E:  // btrfs
    case 0x794C7630:  // overlayfs
    case 0x2FC12FC1:  // zfs
      return true;
    default:
      return false;
  }
}

TEST(StorageCheck, RealFolderIsJudgedByItsStatfsType) {
  testing::TempDir dir;
  struct statfs info;
  ASSERT_EQ(::statfs(dir.Path().c_str(), &info), 0);
  uint32_t magic = static_cast<uint32_t>(info.f_type);
  StorageCheckResult result = CheckStorage(dir.Path(), false, std::nullopt);
  EXPECT_EQ(result.type_magic, magic);
  EXPECT_EQ(result.accepted, ExpectedAccepted(magic)) << result.problem;
  EXPECT_EQ(result.problem.empty(), ExpectedAccepted(magic)) << result.problem;
  EXPECT_FALSE(result.type_overridden);
  EXPECT_TRUE(CheckStorage(dir.Path(), true, std::nullopt).accepted);
}

TEST(StorageCheck, TmpfsOverrideIsRefusedNamingTheTypeAndTheBypass) {
  StorageCheckResult result = CheckStorage("/cache", false, "tmpfs");
  EXPECT_FALSE(result.accepted);
  EXPECT_EQ(result.type_name, "tmpfs");
  EXPECT_EQ(result.type_magic, 0x01021994u);
  EXPECT_TRUE(result.type_overridden);
  EXPECT_EQ(result.problem, "not NFS or a local disk");
  EXPECT_EQ(result.next,
            "caching refused (set modelsCacheStorage.bypassStorageCheck: true to use it anyway)");
}

TEST(StorageCheck, BypassAcceptsAnUnsupportedType) {
  StorageCheckResult result = CheckStorage("/cache", true, "tmpfs");
  EXPECT_TRUE(result.accepted);
  EXPECT_EQ(result.type_name, "tmpfs");
  EXPECT_EQ(result.problem, "not NFS or a local disk");
  EXPECT_NE(result.next.find("used anyway"), std::string::npos) << result.next;
}

TEST(StorageCheck, OverridesNameSupportedTypesAndNumbers) {
  EXPECT_TRUE(CheckStorage("/cache", false, "nfs").accepted);
  EXPECT_TRUE(CheckStorage("/cache", false, "ext3").accepted);
  EXPECT_TRUE(CheckStorage("/cache", false, "xfs").accepted);
  EXPECT_FALSE(CheckStorage("/cache", false, "fuse").accepted);
  StorageCheckResult by_number = CheckStorage("/cache", false, "0x01021994");
  EXPECT_FALSE(by_number.accepted);
  EXPECT_EQ(by_number.type_name, "tmpfs");
  EXPECT_TRUE(CheckStorage("/cache", false, "0x6969").accepted);
}

TEST(StorageCheck, UnknownOverrideIsRefusedEvenWithBypass) {
  StorageCheckResult result = CheckStorage("/cache", true, "floppyfs");
  EXPECT_FALSE(result.accepted);
  EXPECT_NE(result.problem.find("floppyfs"), std::string::npos) << result.problem;
  EXPECT_NE(result.next.find("caching refused, even with"), std::string::npos) << result.next;
}

TEST(StorageCheck, MissingFolderIsRefusedEvenWithBypass) {
  testing::TempDir dir;
  StorageCheckResult result = CheckStorage(dir.Path() / "missing", true, std::nullopt);
  EXPECT_FALSE(result.accepted);
  EXPECT_NE(result.problem.find("statfs failed"), std::string::npos) << result.problem;
  EXPECT_NE(result.next.find("caching refused, even with"), std::string::npos) << result.next;
}

TEST(StorageCheck, DevShmIsRefusedWhenItIsTmpfs) {
  struct statfs info;
  if (::statfs("/dev/shm", &info) != 0 || static_cast<uint32_t>(info.f_type) != 0x01021994u) {
    GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  }
  StorageCheckResult result = CheckStorage("/dev/shm", false, std::nullopt);
  EXPECT_FALSE(result.accepted);
  EXPECT_EQ(result.type_name, "tmpfs");
  EXPECT_TRUE(CheckStorage("/dev/shm", true, std::nullopt).accepted);
}

TEST(StorageCheck, TypeNames) {
  EXPECT_EQ(FilesystemTypeName(0x6969), "nfs");
  EXPECT_EQ(FilesystemTypeName(0xEF53), "ext4");
  EXPECT_EQ(FilesystemTypeName(0x12345678), "unknown");
  EXPECT_FALSE(IsSupportedFilesystem(0x12345678));
}

}  // namespace
}  // namespace modelcache
