#pragma once
// What a fault test asserts about a cache volume: nothing partial is visible under models/
// (every published folder is a whole model), and the models the fault was not about are
// byte-for-byte what they were.
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace modelcache::testing {

// SHA-256 of every regular file below <cache_root>/models/, keyed by its path relative to
// the cache root ("models/m/v1/weights/w.bin"), leaving out the folders of `except_name`@
// `except_version` (empty: none) and the access files (empty; their mtime moves on every hit).
// An empty map when there is no models/ folder.
std::map<std::string, std::string> HashPublishedModels(const std::filesystem::path& cache_root,
                                                       std::string_view except_name = {},
                                                       std::string_view except_version = {});

// "" when every folder models/<name>/<version>/ holds a manifest for that name and version and
// every file it lists, with the listed size and SHA-256; otherwise what is wrong, naming the
// path. A folder being filled is never there: fills happen in staging/.
std::string FindPartialModel(const std::filesystem::path& cache_root);

// The published files of models/<name>/<version>/ as HashPublishedModels keys them (model
// files only: manifest and access file left out), or an empty map when it is not there.
std::map<std::string, std::string> HashModel(const std::filesystem::path& cache_root,
                                             std::string_view name, std::string_view version);

// Writes a complete published model (files of pseudo-random bytes of the given sizes, and
// its manifest) under <cache_root>/models/<name>/<version>, as an agent would have: a
// bystander whose hashes must not change. Records a test failure on error.
void PlantPublishedModel(const std::filesystem::path& cache_root, const std::string& name,
                         const std::string& version,
                         const std::vector<std::pair<std::string, uint64_t>>& files);

}  // namespace modelcache::testing
