#include <gtest/gtest.h>

#include <fstream>

#include "agent/store/manifest.h"
#include "common/fs.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

v1::Manifest SampleManifest() {
  v1::Manifest manifest;
  manifest.set_name("llama-3");
  manifest.set_version("v2");
  manifest.set_source("s3://models/llama-3/v2/");
  manifest.set_fetched_unix_ms(1795000000123);
  manifest.set_total_bytes(18446744073709551615ull);  // survives JSON's string encoding
  v1::ManifestFile* file = manifest.add_files();
  file->set_path("weights/00001.safetensors");
  file->set_size(18446744073709551615ull);
  file->set_sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  file = manifest.add_files();
  file->set_path("config.json");
  file->set_size(0);
  return manifest;
}

TEST(Manifest, RoundTrips) {
  testing::TempDir dir;
  std::filesystem::path path = dir.Path() / "manifest.json";
  v1::Manifest written = SampleManifest();
  ASSERT_TRUE(WriteManifest(path, written).ok());
  absl::StatusOr<v1::Manifest> read = ReadManifest(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), written.SerializeAsString());
  std::string json = *ReadFileToString(path);
  EXPECT_NE(json.find("\"fetchedUnixMs\""), std::string::npos) << json;
  EXPECT_NE(json.find('\n'), std::string::npos) << "want pretty-printed JSON";
}

TEST(Manifest, MissingIsNotFound) {
  testing::TempDir dir;
  EXPECT_EQ(ReadManifest(dir.Path() / "missing.json").status().code(), absl::StatusCode::kNotFound);
}

TEST(Manifest, CorruptJsonIsDataLossNamingThePath) {
  testing::TempDir dir;
  std::filesystem::path path = dir.Path() / "manifest.json";
  for (std::string_view contents : {"{\"name\": \"x\", ", "", "[]", "{\"files\": 3}"}) {
    ASSERT_TRUE(WriteFileAtomic(path, contents).ok());
    absl::StatusOr<v1::Manifest> read = ReadManifest(path);
    ASSERT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << contents;
    EXPECT_NE(std::string(read.status().message()).find(path.string()), std::string::npos);
  }
}

TEST(Manifest, TraversalPathIsRejected) {
  testing::TempDir dir;
  std::filesystem::path path = dir.Path() / "manifest.json";
  for (std::string_view bad : {"../../etc/passwd", "/etc/passwd", ".modelcache-access"}) {
    v1::Manifest manifest = SampleManifest();
    manifest.mutable_files(1)->set_path(std::string(bad));
    ASSERT_TRUE(WriteManifest(path, manifest).ok());
    absl::StatusOr<v1::Manifest> read = ReadManifest(path);
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << bad;
  }
}

TEST(Manifest, InvalidNameIsRejected) {
  testing::TempDir dir;
  std::filesystem::path path = dir.Path() / "manifest.json";
  v1::Manifest manifest = SampleManifest();
  manifest.set_name("../evil");
  ASSERT_TRUE(WriteManifest(path, manifest).ok());
  EXPECT_EQ(ReadManifest(path).status().code(), absl::StatusCode::kDataLoss);
}

TEST(Manifest, UnknownFieldsAreIgnored) {
  testing::TempDir dir;
  std::filesystem::path path = dir.Path() / "manifest.json";
  ASSERT_TRUE(WriteFileAtomic(path, R"({"name": "m", "version": "1", "addedLater": true})").ok());
  absl::StatusOr<v1::Manifest> read = ReadManifest(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->name(), "m");
}

TEST(Journal, RoundTripsAndValidates) {
  testing::TempDir dir;
  std::filesystem::path path = dir.Path() / "journal.json";
  v1::FillJournal journal;
  journal.set_name("m");
  journal.set_version("1");
  journal.set_source("http://127.0.0.1:1/m/");
  v1::FillJournal::File* file = journal.add_files();
  file->set_path("a/b.bin");
  file->set_size(100);
  file->set_etag("\"abc\"");
  file->set_committed_bytes(40);
  ASSERT_TRUE(WriteJournal(path, journal).ok());
  absl::StatusOr<v1::FillJournal> read = ReadJournal(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), journal.SerializeAsString());

  file->set_path("a/../../b.bin");
  ASSERT_TRUE(WriteJournal(path, journal).ok());
  EXPECT_EQ(ReadJournal(path).status().code(), absl::StatusCode::kDataLoss);

  file->set_path("a/b.bin");
  file->set_committed_bytes(101);
  ASSERT_TRUE(WriteJournal(path, journal).ok());
  EXPECT_EQ(ReadJournal(path).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace modelcache
