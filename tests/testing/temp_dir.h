#pragma once
// A fresh directory for one test, removed with everything in it when the object dies.
#include <filesystem>
#include <string>
#include <string_view>

namespace modelcache::testing {

class TempDir {
 public:
  // Under $TMPDIR (or /tmp), named modelcache-test-XXXXXX. Aborts the test binary if the
  // directory cannot be created: no test can run without it.
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& Path() const { return path_; }
  // Path() / relative, as a string.
  std::string Join(std::string_view relative) const;

 private:
  std::filesystem::path path_;
};

// Creates the parent directories and writes `content` to `path`, replacing it. Records a test
// failure and returns false on error.
bool WriteTestFile(const std::filesystem::path& path, std::string_view content);
// The whole file, or "" (and a test failure) if it cannot be read.
std::string ReadTestFile(const std::filesystem::path& path);

}  // namespace modelcache::testing
