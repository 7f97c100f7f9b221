#pragma once
// Model files for fill tests: pseudo-random contents (a fast generator, so hundreds of MiB
// take about a second, not /dev/urandom's pace) and the listing an http source reads.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "modelcache/v1/manifest.pb.h"

namespace modelcache::testing {

struct ModelFileSpec {
  std::string path;  // relative to the model's root
  uint64_t size = 0;
};

// Writes `size` bytes determined by `seed` to `path` (creating its folders) and returns
// their SHA-256 in lowercase hex. Records a test failure on I/O errors.
std::string WriteRandomFile(const std::filesystem::path& path, uint64_t size, uint64_t seed);

// Writes every file of `specs` under `root` (seeds 1, 2, ...) and returns them with their
// sizes and digests, in the order given.
std::vector<v1::ManifestFile> WriteRandomModel(const std::filesystem::path& root,
                                               const std::vector<ModelFileSpec>& specs);

// v1::HttpDirectoryListing as JSON, for <root>/modelcache.json.
std::string HttpListingJson(const std::vector<v1::ManifestFile>& files);

}  // namespace modelcache::testing
