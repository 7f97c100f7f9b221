#pragma once
// Refuses cache folders whose filesystem would make the cache wrong or useless: a tmpfs
// (eats the node's memory, lost on reboot), FUSE mounts (no atomic rename or O_EXCL
// guarantees), ... Accepted: NFS (the shared ReadWriteMany case) and local disk
// filesystems used through hostPath (ext2/3/4, xfs, btrfs, zfs, and overlayfs, which is what
// a container's own root looks like).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace modelcache {

struct StorageCheckResult {
  bool accepted = false;
  std::string type_name;    // "nfs", "ext4", "tmpfs", ... or "unknown"
  uint32_t type_magic = 0;  // statfs f_type (0 when statfs failed)
  // For the log line (the caller adds the folder and the type): what is wrong with the type
  // ("not NFS or a local disk", "statfs failed: ..."), empty when it is supported; and what
  // happens because of it ("caching refused (set ... to use it anyway)", "used anyway ...").
  std::string problem;
  std::string next;
  bool type_overridden = false;  // the type is the tests' fs_type_override, not statfs's
};

// statfs(`root`) and judge its type. With `bypass` an unsupported type is accepted (the
// `next` says so); a folder that cannot be statfs'ed is refused even then, since nothing
// could be cached in it. `fs_type_override` (tests only) pretends the folder has that type:
// a name from the table ("tmpfs", "nfs", "ext4", ...) or a magic number ("0x01021994"); an
// unrecognised override is refused.
StorageCheckResult CheckStorage(const std::filesystem::path& root, bool bypass,
                                std::optional<std::string> fs_type_override);

// The type's name ("tmpfs") for a statfs magic, or "unknown".
std::string_view FilesystemTypeName(uint32_t magic);

// Whether caching on this type is supported without bypass.
bool IsSupportedFilesystem(uint32_t magic);

}  // namespace modelcache
