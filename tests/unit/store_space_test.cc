#include <gtest/gtest.h>

#include "agent/store/space.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

struct FakeVolume {
  VolumeSpace space{100 * kGiB, 10 * kGiB};
  uint64_t used = 0;
  bool fail = false;

  SpaceReservations Reservations(uint64_t quota) {
    return SpaceReservations(
        [this]() -> absl::StatusOr<VolumeSpace> {
          if (fail) return absl::InternalError("statvfs /cache: I/O error");
          return space;
        },
        [this] { return used; }, quota, "/cache");
  }
};

TEST(SpaceReservations, ConcurrentReservationsCount) {
  FakeVolume volume;
  SpaceReservations reservations = volume.Reservations(0);
  EXPECT_TRUE(reservations.Reserve("model a@1", 6 * kGiB).ok());
  EXPECT_EQ(reservations.ReservedBytes(), 6 * kGiB);
  absl::Status status = reservations.Reserve("model b@1", 5 * kGiB);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(reservations.Reserve("model b@1", 4 * kGiB).ok());
  EXPECT_FALSE(reservations.Reserve("model c@1", 1).ok());

  reservations.Release("model a@1");
  EXPECT_EQ(reservations.ReservedBytes(), 4 * kGiB);
  EXPECT_TRUE(reservations.Reserve("model c@1", 6 * kGiB).ok());
  reservations.Release("unknown");
  EXPECT_EQ(reservations.ReservedBytes(), 10 * kGiB);
}

TEST(SpaceReservations, ReservingAgainReplacesOwnReservation) {
  FakeVolume volume;
  SpaceReservations reservations = volume.Reservations(0);
  ASSERT_TRUE(reservations.Reserve("model a@1", 8 * kGiB).ok());
  EXPECT_TRUE(reservations.Reserve("model a@1", 9 * kGiB).ok());
  EXPECT_EQ(reservations.ReservedBytes(), 9 * kGiB);
}

TEST(SpaceReservations, QuotaLimitsBelowDiskFree) {
  FakeVolume volume;
  volume.space.free_bytes = 50 * kGiB;
  volume.used = 8 * kGiB;
  SpaceReservations reservations = volume.Reservations(10 * kGiB);
  EXPECT_FALSE(reservations.Reserve("model big@1", 3 * kGiB).ok());
  EXPECT_TRUE(reservations.Reserve("model a@1", kGiB).ok());
  EXPECT_FALSE(reservations.Reserve("model b@1", kGiB + 1).ok());
  EXPECT_TRUE(reservations.Reserve("model b@1", kGiB).ok());
  volume.used = 11 * kGiB;  // over quota already (published by another agent)
  reservations.Release("model b@1");
  EXPECT_FALSE(reservations.Reserve("model c@1", 1).ok());
}

TEST(SpaceReservations, ShortfallIsWhatRoomOnDemandMustFree) {
  FakeVolume volume;
  volume.space.free_bytes = 50 * kGiB;
  volume.used = 8 * kGiB;
  SpaceReservations reservations = volume.Reservations(10 * kGiB);
  ASSERT_TRUE(reservations.Reserve("model a@1", kGiB).ok());
  // Quota 10, used 8, a@1 reserves 1: 1 GiB free for anyone else.
  EXPECT_EQ(reservations.Shortfall("model big@1", 3 * kGiB).value(), 2 * kGiB);
  EXPECT_EQ(reservations.Shortfall("model small@1", kGiB).value(), 0u);
  // Its own reservation does not count against itself.
  EXPECT_EQ(reservations.Shortfall("model a@1", 2 * kGiB).value(), 0u);
  volume.used = 6 * kGiB;  // two purged
  EXPECT_TRUE(reservations.Reserve("model big@1", 3 * kGiB).ok());
}

TEST(SpaceReservations, DiskLimitsBelowQuota) {
  FakeVolume volume;
  volume.space.free_bytes = 2 * kGiB;
  SpaceReservations reservations = volume.Reservations(100 * kGiB);
  EXPECT_FALSE(reservations.Reserve("model a@1", 3 * kGiB).ok());
  EXPECT_TRUE(reservations.Reserve("model a@1", 2 * kGiB).ok());
}

TEST(SpaceReservations, MessageNamesOwnerBytesAndVolume) {
  FakeVolume volume;
  volume.space.free_bytes = 50 * kGiB;
  volume.used = 8 * kGiB + 800 * (1ull << 20);
  SpaceReservations reservations = volume.Reservations(10 * kGiB);
  absl::Status status = reservations.Reserve("model x@1", 5 * kGiB);
  ASSERT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  std::string message(status.message());
  uint64_t free = 10 * kGiB - volume.used;
  for (std::string part :
       {std::string("model x@1"), std::string("5.0 GiB (5368709120 bytes)"),
        "(" + std::to_string(free) + " bytes) free on /cache", std::string("quota 10.0 GiB"),
        std::string("8.8 GiB used"), std::string("0 B reserved")}) {
    EXPECT_NE(message.find(part), std::string::npos) << "missing " << part << " in " << message;
  }
}

TEST(SpaceReservations, ReadErrorsAreReturned) {
  FakeVolume volume;
  volume.fail = true;
  SpaceReservations reservations = volume.Reservations(0);
  EXPECT_EQ(reservations.Reserve("model a@1", 1).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(reservations.ReservedBytes(), 0u);
}

TEST(ReadVolumeSpace, ReportsRealFilesystem) {
  testing::TempDir dir;
  absl::StatusOr<VolumeSpace> space = ReadVolumeSpace(dir.Path());
  ASSERT_TRUE(space.ok()) << space.status();
  EXPECT_GT(space->capacity_bytes, 0u);
  EXPECT_LE(space->free_bytes, space->capacity_bytes);
  EXPECT_EQ(ReadVolumeSpace(dir.Path() / "missing").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace modelcache
