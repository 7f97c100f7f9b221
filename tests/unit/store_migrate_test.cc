#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "agent/store/manifest.h"
#include "agent/store/migrate.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

std::string PseudoRandomBytes(size_t size, uint64_t seed) {
  std::string bytes(size, '\0');
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; i += 8) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    for (size_t j = 0; j < 8 && i + j < size; ++j)
      bytes[i + j] = static_cast<char>(state >> (8 * j));
  }
  return bytes;
}

// Publishes name@version on `layout` with `files` and a manifest of their hashes.
v1::Manifest PutModel(const CacheLayout& layout, const std::string& name,
                      const std::string& version, const std::map<std::string, std::string>& files,
                      bool with_hashes = true) {
  v1::Manifest manifest;
  manifest.set_name(name);
  manifest.set_version(version);
  manifest.set_source("s3://bucket/" + name);
  manifest.set_fetched_unix_ms(42);
  for (const auto& [path, contents] : files) {
    fs::path full = layout.ModelDir(name, version) / path;
    EXPECT_TRUE(CreateDirectories(full.parent_path()).ok());
    EXPECT_TRUE(WriteFileAtomic(full, contents).ok());
    v1::ManifestFile* file = manifest.add_files();
    file->set_path(path);
    file->set_size(contents.size());
    if (with_hashes) file->set_sha256(*Sha256OfFile(full));
    manifest.set_total_bytes(manifest.total_bytes() + contents.size());
  }
  EXPECT_TRUE(WriteManifest(layout.ManifestPath(name, version), manifest).ok());
  return manifest;
}

void FlipByte(const fs::path& path, std::streamoff offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(offset);
  char byte = 0;
  file.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x40);
  file.seekp(offset);
  file.write(&byte, 1);
}

class MigrateTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(from_.CreateDirectories().ok()); }

  // Several files: 64 MiB (four chunks), one that ends mid-chunk, a small one, an empty one.
  void PutBigModel() {
    manifest_ = PutModel(from_, "llama", "v1",
                         {{"config.json", "{\"layers\": 32}"},
                          {"weights/big.bin", PseudoRandomBytes(64 << 20, 1)},
                          {"weights/mid.bin", PseudoRandomBytes((16 << 20) + 17, 2)},
                          {"empty", ""}});
  }
  // Same shape without the 64 MiB file, for the tests that are not about size.
  void PutSmallModel() {
    manifest_ = PutModel(from_, "llama", "v1",
                         {{"config.json", "{\"layers\": 32}"},
                          {"weights/mid.bin", PseudoRandomBytes((16 << 20) + 17, 2)},
                          {"weights/small.bin", PseudoRandomBytes(1000, 4)},
                          {"empty", ""}});
  }

  // Every file of the source manifest is on the target with the manifest's hash.
  void ExpectPublishedCopy(const std::string& name, const std::string& version,
                           const v1::Manifest& source_manifest) {
    absl::StatusOr<v1::Manifest> copied = ReadManifest(to_.ManifestPath(name, version));
    ASSERT_TRUE(copied.ok()) << copied.status();
    EXPECT_EQ(copied->files_size(), source_manifest.files_size());
    for (const v1::ManifestFile& file : copied->files()) {
      fs::path path = to_.ModelDir(name, version) / file.path();
      EXPECT_EQ(fs::file_size(path), file.size()) << file.path();
      EXPECT_EQ(*Sha256OfFile(path), file.sha256()) << file.path();
      EXPECT_EQ(*Sha256OfFile(from_.ModelDir(name, version) / file.path()), file.sha256());
    }
    EXPECT_EQ(copied->source(), source_manifest.source());
    EXPECT_FALSE(fs::exists(to_.StagingFor(name, version)));
  }

  testing::TempDir dir_;
  CacheLayout from_{dir_.Path() / "old-volume"};
  CacheLayout to_{dir_.Path() / "new-volume"};
  v1::Manifest manifest_;
};

TEST_F(MigrateTest, CopiesVerifiesAndPublishes) {
  PutBigModel();
  absl::StatusOr<MigrateReport> report = CopyModelBetweenVolumes(from_, to_, "llama", "v1", 4);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->skipped);
  EXPECT_EQ(report->files, 4u);
  EXPECT_EQ(report->bytes_copied, manifest_.total_bytes());
  ExpectPublishedCopy("llama", "v1", manifest_);
  absl::StatusOr<v1::Manifest> copied = ReadManifest(to_.ManifestPath("llama", "v1"));
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(copied->SerializeAsString(), manifest_.SerializeAsString());
  EXPECT_TRUE(fs::exists(from_.ModelDir("llama", "v1")));  // a copy, not a move
}

TEST_F(MigrateTest, ReadWriteCopyGivesTheSameResult) {
  PutSmallModel();
  absl::StatusOr<MigrateReport> report =
      CopyModelBetweenVolumes(from_, to_, "llama", "v1", 3, CopyMethod::kReadWrite);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->used_copy_file_range);
  ExpectPublishedCopy("llama", "v1", manifest_);
}

TEST_F(MigrateTest, CorruptSourceIsDataLossAndNothingIsPublished) {
  PutBigModel();
  FlipByte(from_.ModelDir("llama", "v1") / "weights/big.bin", (40 << 20) + 5);
  absl::StatusOr<MigrateReport> report = CopyModelBetweenVolumes(from_, to_, "llama", "v1", 4);
  ASSERT_EQ(report.status().code(), absl::StatusCode::kDataLoss) << report.status();
  EXPECT_NE(report.status().message().find("weights/big.bin"), absl::string_view::npos)
      << report.status();
  EXPECT_FALSE(fs::exists(to_.ModelDir("llama", "v1")));
  EXPECT_FALSE(fs::exists(to_.StagingFor("llama", "v1")));
  EXPECT_TRUE(fs::is_empty(to_.TrashDir()));
}

TEST_F(MigrateTest, TruncatedSourceIsDataLoss) {
  PutSmallModel();
  fs::resize_file(from_.ModelDir("llama", "v1") / "weights/mid.bin", 100);
  absl::StatusOr<MigrateReport> report = CopyModelBetweenVolumes(from_, to_, "llama", "v1", 2);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDataLoss) << report.status();
  EXPECT_FALSE(fs::exists(to_.ModelDir("llama", "v1")));
}

TEST_F(MigrateTest, AlreadyPublishedTargetIsSkipped) {
  PutSmallModel();
  ASSERT_TRUE(CopyModelBetweenVolumes(from_, to_, "llama", "v1", 2).ok());
  absl::StatusOr<MigrateReport> again = CopyModelBetweenVolumes(from_, to_, "llama", "v1", 2);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->skipped);
  EXPECT_EQ(again->bytes_copied, 0u);
}

TEST_F(MigrateTest, FillInProgressOnTargetIsAborted) {
  PutSmallModel();
  ASSERT_TRUE(CreateDirectories(to_.StagingTree("llama", "v1")).ok());
  absl::StatusOr<MigrateReport> report = CopyModelBetweenVolumes(from_, to_, "llama", "v1", 2);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kAborted) << report.status();
  EXPECT_TRUE(fs::exists(to_.StagingTree("llama", "v1")));  // left alone
}

TEST_F(MigrateTest, MissingSourceIsNotFound) {
  PutSmallModel();
  EXPECT_EQ(CopyModelBetweenVolumes(from_, to_, "llama", "v2", 2).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MigrateTest, ManifestWithoutHashesGetsTheSourceHashes) {
  PutModel(from_, "bert", "1", {{"a", "alpha"}, {"b/c", PseudoRandomBytes(1000, 3)}}, false);
  absl::StatusOr<MigrateReport> report = CopyModelBetweenVolumes(from_, to_, "bert", "1", 2);
  ASSERT_TRUE(report.ok()) << report.status();
  absl::StatusOr<v1::Manifest> copied = ReadManifest(to_.ManifestPath("bert", "1"));
  ASSERT_TRUE(copied.ok());
  ASSERT_EQ(copied->files_size(), 2);
  EXPECT_EQ(copied->files(0).sha256(), *Sha256OfFile(from_.ModelDir("bert", "1") / "a"));
  EXPECT_EQ(copied->files(1).sha256(), *Sha256OfFile(from_.ModelDir("bert", "1") / "b/c"));
}

}  // namespace
}  // namespace modelcache
