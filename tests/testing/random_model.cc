#include "tests/testing/random_model.h"

#include <fstream>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "common/sha256.h"

namespace modelcache::testing {
namespace {

// splitmix64: fast, and good enough that no two chunks of a test file look alike.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

std::string WriteRandomFile(const std::filesystem::path& path, uint64_t size, uint64_t seed) {
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    ADD_FAILURE() << "cannot write " << path;
    return "";
  }
  Sha256 digest;
  uint64_t state = seed;
  std::vector<uint64_t> block(1 << 17);  // 1 MiB
  uint64_t left = size;
  while (left > 0) {
    for (uint64_t& word : block) word = NextRandom(state);
    size_t bytes = static_cast<size_t>(std::min<uint64_t>(left, block.size() * sizeof(uint64_t)));
    auto data = std::as_bytes(std::span(block)).first(bytes);
    digest.Update(data);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(bytes));
    left -= bytes;
  }
  out.close();
  if (!out) ADD_FAILURE() << "cannot write " << path;
  return digest.FinishHex();
}

std::vector<v1::ManifestFile> WriteRandomModel(const std::filesystem::path& root,
                                               const std::vector<ModelFileSpec>& specs) {
  std::vector<v1::ManifestFile> files;
  uint64_t seed = 1;
  for (const ModelFileSpec& spec : specs) {
    v1::ManifestFile file;
    file.set_path(spec.path);
    file.set_size(spec.size);
    file.set_sha256(WriteRandomFile(root / spec.path, spec.size, seed++));
    files.push_back(std::move(file));
  }
  return files;
}

std::string HttpListingJson(const std::vector<v1::ManifestFile>& files) {
  v1::HttpDirectoryListing listing;
  for (const auto& file : files) *listing.add_files() = file;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(listing, &json);
  if (!status.ok()) ADD_FAILURE() << "listing to JSON: " << status.ToString();
  return json;
}

}  // namespace modelcache::testing
