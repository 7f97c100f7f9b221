#pragma once
// Admission: a fill reserves its bytes before it starts, so concurrent fills cannot together
// overrun the disk or the volume's quota (NFS does not enforce sizes; we do). Loop-owned.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace modelcache {

struct VolumeSpace {
  uint64_t capacity_bytes = 0;  // statvfs f_blocks * f_frsize
  uint64_t free_bytes = 0;      // statvfs f_bavail * f_frsize
};

// statvfs of the volume; errors name the path.
absl::StatusOr<VolumeSpace> ReadVolumeSpace(const std::filesystem::path& root);

class SpaceReservations {
 public:
  // `read_space` is statvfs in production and a fake in tests; `used_bytes` returns bytes of
  // published models (for the quota). quota_bytes 0 = no quota. `root` only names the volume
  // in messages.
  SpaceReservations(std::function<absl::StatusOr<VolumeSpace>()> read_space,
                    std::function<uint64_t()> used_bytes, uint64_t quota_bytes,
                    std::filesystem::path root = {});

  // Reserves `bytes` for `owner` (a fill id). RESOURCE_EXHAUSTED with a message that names
  // the owner, the bytes needed and the bytes free (disk or quota, whichever is smaller).
  // Free = min(disk free - reserved, quota - used - reserved) when there is a quota. Reserving
  // again for the same owner replaces its reservation. Errors of read_space are returned.
  absl::Status Reserve(const std::string& owner, uint64_t bytes);
  // How many bytes more than is free `owner` would need to reserve `bytes` (0: it fits), as
  // Reserve computes free. Errors of read_space are returned.
  absl::StatusOr<uint64_t> Shortfall(const std::string& owner, uint64_t bytes) const;
  // Returns the owner's reservation (after publish or failure). Unknown owners are ignored.
  void Release(const std::string& owner);
  uint64_t ReservedBytes() const;

 private:
  struct Free {
    uint64_t bytes = 0;  // what `owner` may still reserve
    uint64_t used = 0;   // published bytes (0 without a quota)
    uint64_t reserved = 0;  // by the other owners
  };
  absl::StatusOr<Free> FreeFor(const std::string& owner) const;

  std::function<absl::StatusOr<VolumeSpace>()> read_space_;
  std::function<uint64_t()> used_bytes_;
  uint64_t quota_bytes_;
  std::filesystem::path root_;
  std::map<std::string, uint64_t> reservations_;
};

}  // namespace modelcache
