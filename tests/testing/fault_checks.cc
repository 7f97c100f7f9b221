#include "tests/testing/fault_checks.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "common/safe_text.h"
#include "common/sha256.h"
#include "tests/testing/random_model.h"

namespace modelcache::testing {

namespace fs = std::filesystem;

std::map<std::string, std::string> HashModels(const fs::path& cache_root) {
  std::map<std::string, std::string> hashes;
  const fs::path models = CacheLayout(cache_root).ModelsDir();
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(models, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (!it->is_regular_file(error)) continue;
    if (it->path().filename() == kAccessFileName) continue;  // its mtime is the last use
    absl::StatusOr<std::string> digest = Sha256OfFile(it->path());
    hashes[it->path().lexically_relative(models).generic_string()] =
        digest.ok() ? *digest : absl::StrCat("unreadable: ", digest.status().ToString());
  }
  return hashes;
}

std::vector<std::string> PublishedModelProblems(const fs::path& cache_root) {
  std::vector<std::string> problems;
  const CacheLayout layout(cache_root);
  std::error_code error;
  for (const fs::directory_entry& name : fs::directory_iterator(layout.ModelsDir(), error)) {
    for (const fs::directory_entry& version : fs::directory_iterator(name.path(), error)) {
      const std::string model = absl::StrCat(name.path().filename().string(), "@",
                                             version.path().filename().string());
      absl::StatusOr<v1::Manifest> manifest = ReadManifest(version.path() / kManifestFileName);
      if (!manifest.ok()) {
        problems.push_back(absl::StrCat(model, ": no readable manifest: ", manifest.status().ToString()));
        continue;
      }
      if (manifest->name() != name.path().filename().string() ||
          manifest->version() != version.path().filename().string()) {
        problems.push_back(absl::StrCat(model, ": manifest is for ", manifest->name(), "@",
                                        manifest->version()));
      }
      std::set<std::string> listed;
      for (const v1::ManifestFile& file : manifest->files()) {
        listed.insert(file.path());
        const fs::path path = version.path() / file.path();
        std::error_code size_error;
        const uint64_t size = fs::file_size(path, size_error);
        if (size_error) {
          problems.push_back(absl::StrCat(model, ": ", file.path(), " is missing"));
          continue;
        }
        if (size != file.size()) {
          problems.push_back(absl::StrCat(model, ": ", file.path(), " has ", size,
                                          " bytes, the manifest says ", file.size()));
          continue;
        }
        absl::StatusOr<std::string> digest = Sha256OfFile(path);
        if (!digest.ok() || *digest != file.sha256()) {
          problems.push_back(absl::StrCat(model, ": ", file.path(), " does not match its sha256"));
        }
      }
      for (auto it = fs::recursive_directory_iterator(version.path(), error);
           !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
        if (!it->is_regular_file(error)) continue;
        const std::string relative = it->path().lexically_relative(version.path()).generic_string();
        if (relative.rfind(".modelcache-", 0) == 0) continue;
        if (listed.count(relative) == 0) {
          problems.push_back(absl::StrCat(model, ": ", relative, " is not in the manifest"));
        }
      }
    }
  }
  return problems;
}

void PlantPublishedModel(const fs::path& cache_root, const std::string& name,
                         const std::string& version,
                         const std::vector<std::pair<std::string, uint64_t>>& files) {
  const CacheLayout layout(cache_root);
  std::vector<ModelFileSpec> specs;
  for (const auto& [path, size] : files) specs.push_back({path, size});
  std::vector<v1::ManifestFile> written = WriteRandomModel(layout.ModelDir(name, version), specs);
  v1::Manifest manifest;
  manifest.set_name(name);
  manifest.set_version(version);
  manifest.set_source("http://bystander.invalid/" + name + "/");
  manifest.set_fetched_unix_ms(1'700'000'000'000);
  uint64_t total = 0;
  for (const v1::ManifestFile& file : written) {
    *manifest.add_files() = file;
    total += file.size();
  }
  manifest.set_total_bytes(total);
  absl::Status status = WriteManifest(layout.ManifestPath(name, version), manifest);
  EXPECT_TRUE(status.ok()) << status;
}

std::optional<size_t> FirstNonUtf8Byte(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = Utf8SequenceLength(text, pos);
    if (length == 0) return pos;
    pos += length;
  }
  return std::nullopt;
}

std::optional<uint64_t> ProcStatusBytes(pid_t pid, std::string_view field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    uint64_t kib = 0;
    try {
      kib = std::stoull(line.substr(prefix.size()));
    } catch (...) {
      return std::nullopt;
    }
    return kib * 1024;
  }
  return std::nullopt;
}

}  // namespace modelcache::testing
