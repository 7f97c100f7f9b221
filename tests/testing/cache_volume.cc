#include "tests/testing/cache_volume.h"

#include <system_error>

#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/testing/random_model.h"

namespace modelcache::testing {
namespace {

namespace fs = std::filesystem;

void HashTree(const fs::path& cache_root, const fs::path& dir,
              std::map<std::string, std::string>& hashes) {
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    if (!it->is_regular_file(error) || it->path().filename() == kAccessFileName) continue;
    absl::StatusOr<std::string> digest = Sha256OfFile(it->path());
    hashes[it->path().lexically_relative(cache_root).string()] =
        digest.ok() ? *digest : "unreadable: " + std::string(digest.status().message());
  }
}

}  // namespace

std::map<std::string, std::string> HashPublishedModels(const fs::path& cache_root,
                                                       std::string_view except_name,
                                                       std::string_view except_version) {
  std::map<std::string, std::string> hashes;
  CacheLayout layout(cache_root);
  std::error_code error;
  for (fs::directory_iterator name(layout.ModelsDir(), error), end; !error && name != end;
       name.increment(error)) {
    for (fs::directory_iterator version(name->path(), error); !error && version != end;
         version.increment(error)) {
      if (name->path().filename() == except_name && version->path().filename() == except_version) {
        continue;
      }
      HashTree(cache_root, version->path(), hashes);
    }
  }
  return hashes;
}

std::map<std::string, std::string> HashModel(const fs::path& cache_root, std::string_view name,
                                             std::string_view version) {
  std::map<std::string, std::string> hashes;
  CacheLayout layout(cache_root);
  HashTree(cache_root, layout.ModelDir(name, version), hashes);
  hashes.erase(layout.ManifestPath(name, version).lexically_relative(cache_root).string());
  return hashes;
}

std::string FindPartialModel(const fs::path& cache_root) {
  CacheLayout layout(cache_root);
  std::error_code error;
  for (fs::directory_iterator name(layout.ModelsDir(), error), end; !error && name != end;
       name.increment(error)) {
    for (fs::directory_iterator version(name->path(), error); !error && version != end;
         version.increment(error)) {
      const std::string model_name = name->path().filename().string();
      const std::string model_version = version->path().filename().string();
      absl::StatusOr<v1::Manifest> manifest =
          ReadManifest(layout.ManifestPath(model_name, model_version));
      if (!manifest.ok()) {
        return version->path().string() + ": no valid manifest: " +
               std::string(manifest.status().message());
      }
      if (manifest->name() != model_name || manifest->version() != model_version) {
        return version->path().string() + ": manifest is for " + manifest->name() + "@" +
               manifest->version();
      }
      for (const v1::ManifestFile& file : manifest->files()) {
        fs::path path = version->path() / file.path();
        std::error_code size_error;
        uintmax_t size = fs::file_size(path, size_error);
        if (size_error || size != file.size()) {
          return path.string() + ": missing or of another size than the manifest says";
        }
        absl::StatusOr<std::string> digest = Sha256OfFile(path);
        if (!digest.ok() || *digest != file.sha256()) {
          return path.string() + ": sha256 differs from the manifest";
        }
      }
    }
  }
  return "";
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

}  // namespace modelcache::testing
