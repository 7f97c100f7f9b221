#include "common/sha256.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

std::span<const std::byte> Bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

constexpr std::string_view kEmptyDigest =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kAbcDigest =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(Sha256, EmptyInput) { EXPECT_EQ(Sha256().FinishHex(), kEmptyDigest); }

TEST(Sha256, Abc) {
  Sha256 hasher;
  hasher.Update(Bytes("abc"));
  EXPECT_EQ(hasher.FinishHex(), kAbcDigest);
}

TEST(Sha256, IncrementalUpdatesMatchOneShot) {
  Sha256 hasher;
  hasher.Update(Bytes("a"));
  hasher.Update(Bytes(""));
  hasher.Update(Bytes("bc"));
  EXPECT_EQ(hasher.FinishHex(), kAbcDigest);
}

TEST(Sha256, MovedHasherKeepsState) {
  Sha256 first;
  first.Update(Bytes("ab"));
  Sha256 second = std::move(first);
  second.Update(Bytes("c"));
  EXPECT_EQ(second.FinishHex(), kAbcDigest);
}

TEST(Sha256, FileDigestMatchesStreamDigest) {
  testing::TempDir dir;
  // Larger than the read buffer, so several reads are hashed.
  std::string contents;
  for (int i = 0; contents.size() < (3u << 20) + 17; ++i) contents += std::to_string(i);
  std::ofstream(dir.Path() / "big.bin", std::ios::binary) << contents;
  Sha256 hasher;
  hasher.Update(Bytes(contents));
  EXPECT_EQ(*Sha256OfFile(dir.Path() / "big.bin"), hasher.FinishHex());

  std::ofstream(dir.Path() / "abc.txt", std::ios::binary) << "abc";
  EXPECT_EQ(*Sha256OfFile(dir.Path() / "abc.txt"), kAbcDigest);
}

TEST(Sha256, MissingFileIsNotFound) {
  testing::TempDir dir;
  absl::StatusOr<std::string> digest = Sha256OfFile(dir.Path() / "missing");
  EXPECT_EQ(digest.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(digest.status().message()).find("missing"), std::string::npos);
}

}  // namespace
}  // namespace modelcache
