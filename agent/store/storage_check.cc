#include "agent/store/storage_check.h"

#include <sys/vfs.h>

#include <cerrno>
#include <charconv>
#include <system_error>
#include <utility>

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

struct FilesystemType {
  uint32_t magic;
  std::string_view name;
  bool supported;
};

// Magic numbers from linux/magic.h (and zfs's own).
// clang-format off
constexpr FilesystemType kTypes[] = {
    {0x6969, "nfs", true},
    {0xEF53, "ext4", true},  // ext2, ext3 and ext4 share it
    {0x58465342, "xfs", true},
    {0x9123683E, "btrfs", true},
    {0x2FC12FC1, "zfs", true},
    {0x794C7630, "overlayfs", true},
    {0x01021994, "tmpfs", false},
    {0x858458F6, "ramfs", false},
    {0x65735546, "fuse", false},
    {0x65735543, "fusectl", false},
    {0xFF534D42, "cifs", false},
    {0xFE534D42, "smb2", false},
    {0x00C36400, "ceph", false},
    {0x01021997, "9p", false},
    {0x73717368, "squashfs", false},
    {0x4D44, "vfat", false},
    {0x5346544E, "ntfs", false},
    {0x9FA0, "proc", false},
    {0x62656572, "sysfs", false},
    {0x1373, "devfs", false},
    {0x27E0EB, "cgroup", false},
    {0x63677270, "cgroup2", false},
    {0x6E736673, "nsfs", false},
};
// clang-format on

const FilesystemType* FindByMagic(uint32_t magic) {
  for (const FilesystemType& type : kTypes) {
    if (type.magic == magic) return &type;
  }
  return nullptr;
}

// A name from the table ("ext2"/"ext3" also mean ext4's magic) or a hex/decimal number.
std::optional<uint32_t> ParseOverride(std::string_view text) {
  if (text == "ext2" || text == "ext3") return 0xEF53;
  for (const FilesystemType& type : kTypes) {
    if (type.name == text) return type.magic;
  }
  int base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
    base = 16;
  }
  uint32_t magic = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), magic, base);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return magic;
}

StorageCheckResult Judge(uint32_t magic, bool bypass) {
  StorageCheckResult result;
  result.type_magic = magic;
  result.type_name = std::string(FilesystemTypeName(magic));
  if (IsSupportedFilesystem(magic)) {
    result.accepted = true;
  } else if (bypass) {
    result.accepted = true;
    result.problem = "not NFS or a local disk";
    result.next = "used anyway because modelsCacheStorage.bypassStorageCheck is true";
  } else {
    result.problem = "not NFS or a local disk";
    result.next =
        "caching refused (set modelsCacheStorage.bypassStorageCheck: true to use it anyway)";
  }
  return result;
}

// Nothing could be cached in the folder: refused whatever the bypass says.
StorageCheckResult Unusable(std::string problem) {
  StorageCheckResult result;
  result.type_name = "unknown";
  result.problem = std::move(problem);
  result.next = "caching refused, even with modelsCacheStorage.bypassStorageCheck";
  return result;
}

}  // namespace

std::string_view FilesystemTypeName(uint32_t magic) {
  const FilesystemType* type = FindByMagic(magic);
  return type == nullptr ? std::string_view("unknown") : type->name;
}

bool IsSupportedFilesystem(uint32_t magic) {
  const FilesystemType* type = FindByMagic(magic);
  return type != nullptr && type->supported;
}

StorageCheckResult CheckStorage(const std::filesystem::path& root, bool bypass,
                                std::optional<std::string> fs_type_override) {
  if (fs_type_override.has_value()) {
    std::optional<uint32_t> magic = ParseOverride(*fs_type_override);
    StorageCheckResult result =
        magic.has_value()
            ? Judge(*magic, bypass)
            : Unusable(fmt::format("filesystem type override '{}' is not a known type or number",
                                   *fs_type_override));
    result.type_overridden = true;
    return result;
  }
  struct statfs info;
  if (::statfs(root.c_str(), &info) != 0) {
    return Unusable(fmt::format("statfs failed: {}",
                                std::error_code(errno, std::generic_category()).message()));
  }
  return Judge(static_cast<uint32_t>(info.f_type), bypass);
}

}  // namespace modelcache
