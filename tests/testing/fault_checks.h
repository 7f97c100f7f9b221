#pragma once
// What every fault case (tests/fault, issue 11) asserts besides its own error message:
//   - nothing partial under models/: PublishedModelProblems(cache_root) is empty;
//   - every other model untouched: HashModels(cache_root) is the same before and after
//     (PlantPublishedModel puts such a bystander on the volume before the agent starts).
// And the small probes those cases need: UTF-8 of a log, the peak memory of a process.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modelcache::testing {

// "<name>/<version>/<path>" -> lowercase hex sha256 of every regular file under models/.
std::map<std::string, std::string> HashModels(const std::filesystem::path& cache_root);

// What is wrong with the published models: a version folder without a readable manifest
// naming it, a listed file that is missing or has another size or sha256, a regular file the
// manifest does not list (besides its own dot files). Empty when every model is complete.
std::vector<std::string> PublishedModelProblems(const std::filesystem::path& cache_root);

// Writes a complete published model (files of pseudo-random bytes of the given sizes, and
// its manifest) under <cache_root>/models/<name>/<version>, as an agent would have; for a
// bystander whose hashes must not change. Records a test failure on error.
void PlantPublishedModel(const std::filesystem::path& cache_root, const std::string& name,
                         const std::string& version,
                         const std::vector<std::pair<std::string, uint64_t>>& files);

// Offset of the first byte of `text` that is not part of valid UTF-8; nullopt when all is.
std::optional<size_t> FirstNonUtf8Byte(std::string_view text);

// A field of /proc/<pid>/status given in kB ("VmHWM", "VmRSS"), in bytes; nullopt when the
// process or the field is not there.
std::optional<uint64_t> ProcStatusBytes(pid_t pid, std::string_view field);

}  // namespace modelcache::testing
