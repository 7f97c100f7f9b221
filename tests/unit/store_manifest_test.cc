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

TEST(Manifest, TheSourceIdentityRoundTrips) {
  testing::TempDir dir;
  std::filesystem::path path = dir.Path() / "manifest.json";
  v1::Manifest written = SampleManifest();
  v1::ManifestFile* file = written.mutable_files(0);
  file->set_etag("\"9b2cf535f27731c974343645a3985328\"");
  file->set_version_id("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd");
  file->set_source_sha256(file->sha256());
  written.mutable_source_revision()->set_revision("0123456789abcdef0123456789abcdef01234567");
  written.mutable_source_revision()->set_digest("sha256:ba7816bf8f01cfea");
  ASSERT_TRUE(WriteManifest(path, written).ok());
  absl::StatusOr<v1::Manifest> read = ReadManifest(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), written.SerializeAsString());
  std::string json = *ReadFileToString(path);
  EXPECT_NE(json.find("\"versionId\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"sourceRevision\""), std::string::npos) << json;
}

// What an agent before the source identity wrote (this very text): it still loads, with an
// empty identity, and its source still decides hits.
TEST(Manifest, AManifestOfAnOlderAgentWithoutIdentityLoads) {
  testing::TempDir dir;
  std::filesystem::path path = dir.Path() / "manifest.json";
  ASSERT_TRUE(WriteFileAtomic(path, R"({
 "name": "m",
 "version": "v1",
 "source": "http://127.0.0.1:8080/m/",
 "fetchedUnixMs": "1795000000123",
 "totalBytes": "4",
 "files": [
  {
   "path": "w.bin",
   "size": "4",
   "sha256": "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
  }
 ]
})").ok());
  absl::StatusOr<v1::Manifest> read = ReadManifest(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->source(), "http://127.0.0.1:8080/m/");
  EXPECT_EQ(read->files(0).etag(), "");
  EXPECT_EQ(read->files(0).version_id(), "");
  EXPECT_FALSE(read->has_source_revision());
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
