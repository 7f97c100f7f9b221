#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>

#include "agent/store/manifest.h"
#include "agent/store/verify.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

// Publishes name@version with `files` (path -> contents) and a manifest of their hashes.
void PutModel(const CacheLayout& layout, const std::string& name, const std::string& version,
              const std::map<std::string, std::string>& files) {
  v1::Manifest manifest;
  manifest.set_name(name);
  manifest.set_version(version);
  for (const auto& [path, contents] : files) {
    fs::path full = layout.ModelDir(name, version) / path;
    ASSERT_TRUE(CreateDirectories(full.parent_path()).ok());
    ASSERT_TRUE(WriteFileAtomic(full, contents).ok());
    v1::ManifestFile* file = manifest.add_files();
    file->set_path(path);
    file->set_size(contents.size());
    file->set_sha256(*Sha256OfFile(full));
    manifest.set_total_bytes(manifest.total_bytes() + contents.size());
  }
  ASSERT_TRUE(WriteManifest(layout.ManifestPath(name, version), manifest).ok());
}

void FlipByte(const fs::path& path, std::streamoff offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(offset);
  char byte = 0;
  file.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x01);
  file.seekp(offset);
  file.write(&byte, 1);
}

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PutModel(layout_, "llama", "v1",
             {{"config.json", "{\"a\":1}"},
              {"weights/a.bin", std::string(300'000, 'a')},
              {"weights/b.bin", std::string(5, 'b')},
              {"empty", ""}});
  }
  testing::TempDir dir_;
  CacheLayout layout_{dir_.Path() / "cache"};
};

TEST_F(VerifyTest, IntactModelIsClean) {
  absl::StatusOr<VerifyReport> report = VerifyModel(layout_, "llama", "v1", RateLimit{});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->Clean());
  EXPECT_EQ(report->files_checked, 4u);
  EXPECT_EQ(report->bytes_hashed, 300'000u + 7 + 5);
}

TEST_F(VerifyTest, FlippedByteIsReportedWithBothHashes) {
  FlipByte(layout_.ModelDir("llama", "v1") / "weights/a.bin", 123'456);
  absl::StatusOr<VerifyReport> report = VerifyModel(layout_, "llama", "v1", RateLimit{});
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->bad_files.size(), 1u);
  EXPECT_EQ(report->bad_files[0].path, "weights/a.bin");
  EXPECT_NE(report->bad_files[0].problem.find("sha256 mismatch"), std::string::npos)
      << report->bad_files[0].problem;
  EXPECT_EQ(report->files_checked, 4u);
}

TEST_F(VerifyTest, MissingAndResizedFilesAreReported) {
  fs::remove(layout_.ModelDir("llama", "v1") / "config.json");
  ASSERT_TRUE(WriteFileAtomic(layout_.ModelDir("llama", "v1") / "weights/b.bin", "bbbbbb").ok());
  absl::StatusOr<VerifyReport> report = VerifyModel(layout_, "llama", "v1", RateLimit{});
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->bad_files.size(), 2u);
  EXPECT_EQ(report->bad_files[0].path, "config.json");
  EXPECT_EQ(report->bad_files[0].problem, "missing");
  EXPECT_EQ(report->bad_files[1].path, "weights/b.bin");
  EXPECT_NE(report->bad_files[1].problem.find("has 6 bytes, manifest says 5"), std::string::npos);
}

TEST_F(VerifyTest, UnpublishedModelIsNotFound) {
  EXPECT_EQ(VerifyModel(layout_, "llama", "v9", RateLimit{}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(VerifyModel(layout_, "..", "v1", RateLimit{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(VerifyTest, RateLimitSlowsReading) {
  // 300 KB at 1 MB/s cannot take less than 0.3 s.
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<VerifyReport> report = VerifyModel(layout_, "llama", "v1", RateLimit{1'000'000});
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->Clean());
  EXPECT_GE(elapsed, std::chrono::milliseconds(295));
}

TEST_F(VerifyTest, CancelStopsVerification) {
  std::atomic<bool> cancel{true};
  EXPECT_EQ(VerifyModel(layout_, "llama", "v1", RateLimit{}, &cancel).status().code(),
            absl::StatusCode::kCancelled);
}

TEST_F(VerifyTest, QuarantineMovesTheModelOutOfModels) {
  FlipByte(layout_.ModelDir("llama", "v1") / "weights/a.bin", 0);
  absl::StatusOr<fs::path> moved =
      Quarantine(layout_, "llama", "v1", FromUnixMillis(1'700'000'000'000));
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, layout_.QuarantineDir() / "llama@v1-1700000000000");
  EXPECT_FALSE(fs::exists(layout_.ModelDir("llama", "v1")));
  EXPECT_TRUE(fs::exists(*moved / "weights/a.bin"));
  EXPECT_TRUE(fs::exists(*moved / kManifestFileName));
  EXPECT_EQ(VerifyModel(layout_, "llama", "v1", RateLimit{}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Quarantine(layout_, "llama", "v1").status().code(), absl::StatusCode::kNotFound);

  // The same model quarantined again at the same millisecond gets its own folder.
  PutModel(layout_, "llama", "v1", {{"x", "1"}});
  absl::StatusOr<fs::path> again =
      Quarantine(layout_, "llama", "v1", FromUnixMillis(1'700'000'000'000));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(*again, *moved);
  EXPECT_TRUE(fs::exists(*again / "x"));
}

}  // namespace
}  // namespace modelcache
