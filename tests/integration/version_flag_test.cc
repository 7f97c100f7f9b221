// `--version` of each binary prints its name and the project version of CMakeLists.txt, the
// version the Dockerfile labels the image with (scripts/image-test.sh runs the same flags in the
// image). It needs no config and no subcommand.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;

// The VERSION of CMakeLists.txt's project() line, "" when there is none.
std::string ProjectVersion() {
  const std::string cmake = testing::ReadTestFile(MODELCACHE_SOURCE_DIR "/CMakeLists.txt");
  std::smatch match;
  if (!std::regex_search(cmake, match, std::regex("project\\(modelcache VERSION ([0-9.]+)"))) return "";
  return match[1].str();
}

TEST(Binaries, VersionFlagPrintsTheNameAndTheProjectVersion) {
  const std::string version = ProjectVersion();
  ASSERT_FALSE(version.empty()) << "no project(modelcache VERSION ...) in CMakeLists.txt";
  const std::string dockerfile = testing::ReadTestFile(MODELCACHE_SOURCE_DIR "/Dockerfile");
  EXPECT_NE(dockerfile.find("org.opencontainers.image.version=\"" + version + "\""), std::string::npos)
      << "the Dockerfile's version label is not " << version;

  testing::TempDir dir;
  for (const std::string path : {"agent/modelcache-agent", "coordinator/modelcache-coordinator", "cli/modelcachectl"}) {
    const std::string name = path.substr(path.find('/') + 1);
    testing::SubprocessOptions options;
    options.argv = {std::string(MODELCACHE_BINARY_DIR) + "/" + path, "--version"};
    options.stdout_path = dir.Join(name + ".out");
    options.stderr_path = dir.Join(name + ".err");
    auto process = testing::Subprocess::Start(options);
    ASSERT_TRUE(process.ok()) << process.status();
    auto exit = (*process)->WaitExit(30s);
    ASSERT_TRUE(exit.ok()) << name << ": " << exit.status();
    EXPECT_TRUE(exit->Success()) << name << ": " << exit->ToString() << ": " << testing::ReadTestFile(options.stderr_path);
    EXPECT_EQ(testing::ReadTestFile(options.stdout_path), name + " " + version + "\n") << name;
  }
}

}  // namespace
}  // namespace modelcache
