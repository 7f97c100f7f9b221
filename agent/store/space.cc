#include "agent/store/space.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>

#include "common/fs.h"
#include "common/quantity.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// "5.0 GiB (5368709120 bytes)": readable, and exact for whoever has to compare numbers.
std::string BytesWithExact(uint64_t bytes) {
  return fmt::format("{} ({} bytes)", FormatBytes(bytes), bytes);
}

uint64_t SaturatingSubtract(uint64_t from, uint64_t amount) {
  return from > amount ? from - amount : 0;
}

}  // namespace

absl::StatusOr<VolumeSpace> ReadVolumeSpace(const std::filesystem::path& root) {
  struct statvfs info;
  if (::statvfs(root.c_str(), &info) != 0) return ErrnoStatus(errno, "statvfs", root);
  VolumeSpace space;
  space.capacity_bytes = static_cast<uint64_t>(info.f_blocks) * info.f_frsize;
  space.free_bytes = static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
  return space;
}

SpaceReservations::SpaceReservations(std::function<absl::StatusOr<VolumeSpace>()> read_space,
                                     std::function<uint64_t()> used_bytes, uint64_t quota_bytes,
                                     std::filesystem::path root)
    : read_space_(std::move(read_space)),
      used_bytes_(std::move(used_bytes)),
      quota_bytes_(quota_bytes),
      root_(std::move(root)) {}

absl::StatusOr<SpaceReservations::Free> SpaceReservations::FreeFor(const std::string& owner) const {
  ASSIGN_OR_RETURN(VolumeSpace space, read_space_());
  Free free;
  for (const auto& [other, other_bytes] : reservations_) {
    if (other != owner) free.reserved += other_bytes;
  }
  free.bytes = SaturatingSubtract(space.free_bytes, free.reserved);
  if (quota_bytes_ > 0) {
    free.used = used_bytes_ ? used_bytes_() : 0;
    free.bytes = std::min(free.bytes, SaturatingSubtract(quota_bytes_, free.used + free.reserved));
  }
  return free;
}

absl::StatusOr<uint64_t> SpaceReservations::Shortfall(const std::string& owner,
                                                      uint64_t bytes) const {
  ASSIGN_OR_RETURN(Free free, FreeFor(owner));
  return SaturatingSubtract(bytes, free.bytes);
}

absl::Status SpaceReservations::Reserve(const std::string& owner, uint64_t bytes) {
  ASSIGN_OR_RETURN(Free free, FreeFor(owner));
  if (bytes > free.bytes) {
    std::string where = root_.empty() ? std::string() : fmt::format(" on {}", root_.string());
    std::string context =
        quota_bytes_ > 0 ? fmt::format("quota {}, {} used, {} reserved", FormatBytes(quota_bytes_),
                                       FormatBytes(free.used), FormatBytes(free.reserved))
                         : fmt::format("no quota, {} reserved", FormatBytes(free.reserved));
    return absl::ResourceExhaustedError(fmt::format("{}: needs {}, {} free{} ({})", owner,
                                                    BytesWithExact(bytes),
                                                    BytesWithExact(free.bytes), where, context));
  }
  reservations_[owner] = bytes;
  return absl::OkStatus();
}

void SpaceReservations::Release(const std::string& owner) { reservations_.erase(owner); }

uint64_t SpaceReservations::ReservedBytes() const {
  uint64_t total = 0;
  for (const auto& [owner, bytes] : reservations_) total += bytes;
  return total;
}

}  // namespace modelcache
