// The runtime image installs only scripts/packages.txt's `runtime` lines (and what they depend
// on) on debian:bookworm-slim. Building the image takes scripts/image-test.sh, which compiles the
// project and is skipped unless asked for (CTest label `image`), so this checks the next best
// thing on this Debian 12 machine: every shared library that the built binaries load comes from
// a package that the runtime lines pull in. (image-test.sh checks the image itself with ldd.)
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

const std::string kSourceDir = MODELCACHE_SOURCE_DIR;
const std::string kBinaryDir = MODELCACHE_BINARY_DIR;

struct Output {
  bool ok = false;
  std::string out;
  std::string err;
};

// Runs argv to completion (60 s at most) and returns what it printed.
Output Run(const std::vector<std::string>& argv) {
  Output output;
  testing::TempDir dir;
  testing::SubprocessOptions options;
  options.argv = argv;
  options.stdout_path = dir.Join("stdout");
  options.stderr_path = dir.Join("stderr");
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> process = testing::Subprocess::Start(options);
  if (!process.ok()) {
    output.err = std::string(process.status().message());
    return output;
  }
  absl::StatusOr<testing::ExitStatus> exit = (*process)->WaitExit(std::chrono::seconds(60));
  output.ok = exit.ok() && exit->Success();
  output.out = testing::ReadTestFile(options.stdout_path);
  output.err = testing::ReadTestFile(options.stderr_path);
  return output;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string Trim(std::string text) {
  text.erase(0, text.find_first_not_of(" \t"));
  text.erase(text.find_last_not_of(" \t") + 1);
  return text;
}

std::set<std::string> RuntimePackages() {
  std::set<std::string> packages;
  for (const std::string& line : Lines(testing::ReadTestFile(kSourceDir + "/scripts/packages.txt"))) {
    std::istringstream words(line);
    std::string kind, name;
    if (words >> kind >> name && kind == "runtime") packages.insert(name);
  }
  return packages;
}

// The installed packages that `roots` pull in through Depends and Pre-Depends, roots
// included. For an alternative "a | b" apt installs the first, so only the first is followed.
std::set<std::string> DependencyClosure(const std::set<std::string>& roots) {
  std::set<std::string> closure;
  std::vector<std::string> frontier(roots.begin(), roots.end());
  while (!frontier.empty()) {
    std::vector<std::string> argv = {"dpkg-query", "-W", "-f=${Package}\\t${Pre-Depends}, ${Depends}\\n"};
    for (const std::string& package : frontier) {
      if (closure.insert(package).second) argv.push_back(package);
    }
    frontier.clear();
    if (argv.size() == 3) break;
    // Exits non-zero when one of them is not installed; the others are still printed.
    for (const std::string& line : Lines(Run(argv).out)) {
      std::istringstream fields(line.substr(line.find('\t') + 1));
      for (std::string dependency; std::getline(fields, dependency, ',');) {
        dependency = Trim(dependency.substr(0, dependency.find('|')));
        dependency = dependency.substr(0, dependency.find_first_of(" (:"));
        if (!dependency.empty() && !closure.contains(dependency)) frontier.push_back(dependency);
      }
    }
  }
  return closure;
}

// The shared libraries `binary` loads, resolved by the dynamic linker: path -> soname.
// A library the linker cannot find maps to "not found".
std::map<std::string, std::string> SharedLibraries(const std::string& binary) {
  std::map<std::string, std::string> libraries;
  Output ldd = Run({"ldd", binary});
  EXPECT_TRUE(ldd.ok) << "ldd " << binary << ": " << ldd.err;
  for (const std::string& line : Lines(ldd.out)) {
    size_t arrow = line.find("=>");
    if (arrow == std::string::npos) continue;  // the vDSO and the dynamic linker itself
    std::string soname = Trim(line.substr(0, arrow));
    std::string target = Trim(line.substr(arrow + 2));
    if (target.starts_with("not found")) {
      libraries["not found: " + soname] = soname;
      continue;
    }
    libraries[target.substr(0, target.find(" ("))] = soname;
  }
  return libraries;
}

// The packages that own `paths`, by path, from one dpkg call (each call reads the whole
// database). dpkg records either the /lib or the /usr/lib spelling on a merged-/usr system, so
// both are asked; a path no package owns is left out.
std::map<std::string, std::string> OwningPackages(const std::set<std::string>& paths) {
  std::map<std::string, std::string> spelling_to_path;
  for (const std::string& path : paths) {
    std::string canonical = fs::weakly_canonical(path).string();
    for (const std::string& spelling : {path, canonical}) {
      spelling_to_path[spelling] = path;
      if (spelling.starts_with("/usr/lib/")) spelling_to_path[spelling.substr(4)] = path;
      if (spelling.starts_with("/lib/")) spelling_to_path["/usr" + spelling] = path;
    }
  }
  std::vector<std::string> argv = {"dpkg", "-S"};
  for (const auto& [spelling, path] : spelling_to_path) argv.push_back(spelling);
  std::map<std::string, std::string> owners;
  // Exits non-zero when some spelling is unknown; the known ones are printed all the same.
  for (const std::string& line : Lines(Run(argv).out)) {
    size_t separator = line.find(": /");
    if (separator == std::string::npos || line.starts_with("diversion")) continue;
    std::string packages = line.substr(0, separator);
    auto found = spelling_to_path.find(line.substr(separator + 2));
    if (found == spelling_to_path.end() || packages.find(", ") != std::string::npos) continue;
    owners[found->second] = packages.substr(0, packages.find(':'));
  }
  return owners;
}

TEST(ImageRuntimeLibraries, EveryLibraryTheBinariesLoadComesFromTheRuntimePackages) {
  std::vector<std::string> binaries;
  std::vector<std::string> missing;
  for (std::string relative :
       {"agent/modelcache-agent", "coordinator/modelcache-coordinator", "cli/modelcachectl"}) {
    std::string path = kBinaryDir + "/" + relative;
    (fs::exists(path) ? binaries : missing).push_back(path);
  }
  if (binaries.empty()) GTEST_SKIP() << "no binary is built yet (" << ::testing::PrintToString(missing) << ")";
  for (const std::string& path : missing) std::cout << "not built, not checked: " << path << "\n";

  std::set<std::string> runtime = RuntimePackages();
  ASSERT_FALSE(runtime.empty());
  std::set<std::string> installed_in_image = DependencyClosure(runtime);
  // Sanity: the closure really followed dependencies (libgrpc++ needs libc6 and libstdc++6).
  ASSERT_THAT(installed_in_image, ::testing::IsSupersetOf({"libc6", "libstdc++6"}));

  std::map<std::string, std::map<std::string, std::string>> libraries_of;
  std::set<std::string> all_paths;
  for (const std::string& binary : binaries) {
    libraries_of[binary] = SharedLibraries(binary);
    EXPECT_FALSE(libraries_of[binary].empty()) << binary;
    for (const auto& [path, soname] : libraries_of[binary]) {
      ASSERT_FALSE(path.starts_with("not found")) << binary << " needs " << soname << ", which is not installed";
      all_paths.insert(path);
    }
  }
  std::map<std::string, std::string> owners = OwningPackages(all_paths);
  for (const auto& [binary, libraries] : libraries_of) {
    for (const auto& [path, soname] : libraries) {
      auto owner = owners.find(path);
      if (owner == owners.end()) {
        ADD_FAILURE() << binary << ": no package owns " << path;
        continue;
      }
      EXPECT_TRUE(installed_in_image.contains(owner->second))
          << binary << " loads " << soname << " (" << path << ") from package " << owner->second
          << ", which no `runtime` line of scripts/packages.txt pulls in";
    }
  }
}

}  // namespace
}  // namespace modelcache
