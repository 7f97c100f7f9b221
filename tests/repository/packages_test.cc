// The Dockerfile, scripts/setup.sh, scripts/image-test.sh and scripts/packages.txt must agree:
// the image installs exactly the `build` and `runtime` lines of the list that setup.sh installs,
// and names no package itself; the `image` lines (the tools that build the image without a
// Docker engine) are installed by image-test.sh alone. These checks read the scripts and the
// Dockerfile and run their package selections (awk) against the real list; building the image
// itself takes scripts/image-test.sh (CTest label `image`, skipped unless asked for).
#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

using ::testing::ElementsAreArray;
using ::testing::IsSupersetOf;

const std::string kSourceDir = MODELCACHE_SOURCE_DIR;
const std::string kPackagesPath = kSourceDir + "/scripts/packages.txt";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> Words(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

struct PackageLine {
  std::string kind;
  std::string name;
  std::vector<std::string> fields;
};

std::vector<PackageLine> ReadPackageLines() {
  std::vector<PackageLine> lines;
  std::istringstream in(ReadFile(kPackagesPath));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields = Words(line);
    if (fields.empty()) continue;
    lines.push_back({fields[0], fields.size() > 1 ? fields[1] : "", fields});
  }
  return lines;
}

std::vector<std::string> PackagesOfKind(std::string_view kind) {
  std::vector<std::string> names;
  for (const PackageLine& line : ReadPackageLines()) {
    if (line.kind == kind) names.push_back(line.name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `command` with /bin/sh and returns its standard output; the test fails on a non-zero
// exit. Only awk programs taken from the Dockerfile and setup.sh run here.
std::string ShellOutput(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed for: " << command;
    return output;
  }
  std::array<char, 4096> buffer;
  while (size_t count = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), count);
  int status = pclose(pipe);
  EXPECT_EQ(status, 0) << "command failed: " << command;
  return output;
}

std::vector<std::string> SortedWords(std::string_view text) {
  std::vector<std::string> words = Words(text);
  std::sort(words.begin(), words.end());
  return words;
}

// From `start` (at "$("), the index just past the matching ")", honouring quotes.
size_t EndOfSubstitution(std::string_view text, size_t start) {
  int depth = 0;
  char quote = 0;
  for (size_t i = start + 1; i < text.size(); ++i) {
    char c = text[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

struct Instruction {
  std::string keyword;  // upper case: FROM, RUN, COPY...
  std::string arguments;
};

struct Stage {
  std::string image;
  std::string name;
  std::vector<Instruction> instructions;
};

// Splits the Dockerfile into stages of instructions, with continuation lines joined and
// comment lines dropped (Docker drops them inside continued instructions too).
std::vector<Stage> ParseDockerfile(const std::string& text) {
  std::vector<Stage> stages;
  std::istringstream in(text);
  std::string logical;
  auto flush = [&] {
    std::vector<std::string> words = Words(logical);
    if (words.empty()) return;
    std::string keyword = words[0];
    std::transform(keyword.begin(), keyword.end(), keyword.begin(), ::toupper);
    std::string arguments = logical.substr(logical.find(words[0]) + words[0].size());
    if (keyword == "FROM") {
      Stage stage;
      stage.image = words.size() > 1 ? words[1] : "";
      if (words.size() > 3) stage.name = words[3];
      stages.push_back(stage);
    } else if (!stages.empty()) {
      stages.back().instructions.push_back({keyword, arguments});
    }
    logical.clear();
  };
  for (std::string line; std::getline(in, line);) {
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    size_t last = line.find_last_not_of(" \t");
    if (line[last] == '\\') {
      logical += line.substr(0, last) + " ";
      continue;
    }
    logical += line;
    flush();
  }
  flush();
  return stages;
}

std::vector<Stage> Dockerfile() { return ParseDockerfile(ReadFile(kSourceDir + "/Dockerfile")); }

// One `apt-get install` in a RUN instruction: its package operand, and the file it reads the
// names from.
struct AptInstall {
  std::string stage_name;
  std::string selection;  // the "$(awk ...)" operand, as written
  std::string list_path;  // the file the awk program reads
  std::vector<std::string> literal_names;
};

std::vector<AptInstall> FindAptInstalls(const std::vector<Stage>& stages) {
  std::vector<AptInstall> installs;
  for (const Stage& stage : stages) {
    for (const Instruction& instruction : stage.instructions) {
      if (instruction.keyword != "RUN") continue;
      std::string_view run = instruction.arguments;
      for (size_t at = run.find("apt-get install"); at != std::string_view::npos;
           at = run.find("apt-get install", at + 1)) {
        size_t begin = at + std::string_view("apt-get install").size();
        size_t end = std::min(run.find("&&", begin), run.find(';', begin));
        std::string_view command = run.substr(begin, end == std::string_view::npos ? run.size() - begin : end - begin);
        AptInstall install;
        install.stage_name = stage.name;
        size_t substitution = command.find("$(");
        std::string rest(command);
        if (substitution != std::string_view::npos) {
          size_t substitution_end = EndOfSubstitution(command, substitution);
          install.selection = std::string(command.substr(substitution, substitution_end - substitution));
          rest = std::string(command.substr(0, substitution)) + std::string(command.substr(substitution_end));
          std::vector<std::string> words = Words(install.selection.substr(2, install.selection.size() - 3));
          if (!words.empty()) install.list_path = words.back();
        }
        for (const std::string& word : Words(rest)) {
          if (word[0] != '-') install.literal_names.push_back(word);
        }
        installs.push_back(install);
      }
    }
  }
  return installs;
}

// Where `COPY scripts/packages.txt DEST` put the list in this stage ("" when it did not).
std::string CopiedPackageListPath(const Stage& stage) {
  for (const Instruction& instruction : stage.instructions) {
    std::vector<std::string> words = Words(instruction.arguments);
    if (instruction.keyword == "COPY" && words.size() == 2 && words[0] == "scripts/packages.txt") return words[1];
  }
  return "";
}

TEST(PackageList, EveryLineIsAKindAndOneDebianName) {
  std::vector<PackageLine> lines = ReadPackageLines();
  ASSERT_FALSE(lines.empty());
  std::set<std::string> seen;
  for (const PackageLine& line : lines) {
    EXPECT_EQ(line.fields.size(), 2u) << "line: " << ::testing::PrintToString(line.fields);
    EXPECT_TRUE(line.kind == "build" || line.kind == "test" || line.kind == "runtime" || line.kind == "image")
        << "kind: " << line.kind;
    EXPECT_EQ(fnmatch("[a-z0-9][a-z0-9.+-]*", line.name.c_str(), 0), 0) << "not a package name: " << line.name;
    EXPECT_TRUE(seen.insert(line.name).second) << "listed twice: " << line.name;
  }
}

TEST(PackageList, RuntimeImageGetsNoDevelopmentPackage) {
  std::vector<std::string> runtime = PackagesOfKind("runtime");
  ASSERT_FALSE(runtime.empty());
  for (const std::string& name : runtime) {
    EXPECT_FALSE(name.ends_with("-dev")) << name;
    EXPECT_FALSE(name.starts_with("g++") || name == "cmake" || name == "ninja-build") << name;
  }
}

TEST(DockerfilePackages, EveryAptInstallSelectsFromTheCopiedPackageList) {
  std::vector<Stage> stages = Dockerfile();
  std::vector<AptInstall> installs = FindAptInstalls(stages);
  ASSERT_EQ(installs.size(), 2u) << "one install in the build stage, one in the runtime stage";
  for (const AptInstall& install : installs) {
    EXPECT_THAT(install.literal_names, ::testing::IsEmpty())
        << "stage " << install.stage_name << " names packages itself instead of reading scripts/packages.txt";
    EXPECT_THAT(install.selection, ::testing::StartsWith("$(awk ")) << "stage " << install.stage_name;
    const Stage& stage = *std::find_if(stages.begin(), stages.end(),
                                       [&](const Stage& s) { return s.name == install.stage_name; });
    std::string copied = CopiedPackageListPath(stage);
    EXPECT_FALSE(copied.empty()) << "stage " << stage.name << " does not COPY scripts/packages.txt";
    EXPECT_EQ(install.list_path, copied) << "stage " << stage.name << " reads another file";
  }
}

TEST(DockerfilePackages, NoOtherInstallerIsUsed) {
  for (const Stage& stage : Dockerfile()) {
    for (const Instruction& instruction : stage.instructions) {
      for (std::string_view installer : {"apt install", "dpkg -i", "aptitude", "pip install", "npm install"}) {
        EXPECT_EQ(instruction.arguments.find(installer), std::string::npos)
            << "stage " << stage.name << " uses " << installer << ": " << instruction.arguments;
      }
    }
  }
}

// The strongest check: run each stage's own selection against the real list.
TEST(DockerfilePackages, BuildStageInstallsExactlyTheBuildLinesAndRuntimeStageTheRuntimeLines) {
  std::vector<Stage> stages = Dockerfile();
  ASSERT_GE(stages.size(), 2u);
  std::map<std::string, std::string> expected_kind = {{stages.front().name, "build"}, {stages.back().name, "runtime"}};
  std::vector<AptInstall> installs = FindAptInstalls(stages);
  ASSERT_EQ(installs.size(), 2u);
  for (const AptInstall& install : installs) {
    ASSERT_FALSE(install.list_path.empty());
    std::string command = install.selection.substr(2, install.selection.size() - 3);
    command.replace(command.rfind(install.list_path), install.list_path.size(), "'" + kPackagesPath + "'");
    std::vector<std::string> selected = SortedWords(ShellOutput(command));
    std::vector<std::string> listed = PackagesOfKind(expected_kind[install.stage_name]);
    ASSERT_FALSE(listed.empty());
    EXPECT_THAT(selected, ElementsAreArray(listed)) << "stage " << install.stage_name << ": " << command;
  }
}

// Runs the first `$(awk ...)` package selection of a script against the real list.
std::vector<std::string> ScriptSelection(const std::string& script_path) {
  std::string script = ReadFile(script_path);
  size_t start = script.find("$(awk ");
  EXPECT_NE(start, std::string::npos) << script_path << " does not select packages with awk";
  if (start == std::string::npos) return {};
  size_t end = EndOfSubstitution(script, start);
  EXPECT_NE(end, std::string::npos) << script_path;
  if (end == std::string::npos) return {};
  std::string command = script.substr(start + 2, end - start - 3);
  std::vector<std::string> words = Words(command);
  EXPECT_THAT(words.back(), ::testing::HasSubstr("packages.txt")) << script_path;
  command.replace(command.rfind(words.back()), words.back().size(), "'" + kPackagesPath + "'");
  return SortedWords(ShellOutput(command));
}

TEST(SetupScript, InstallsEveryPackageTheImageInstalls) {
  std::vector<std::string> installed = ScriptSelection(kSourceDir + "/scripts/setup.sh");
  EXPECT_THAT(installed, IsSupersetOf(PackagesOfKind("build")));
  EXPECT_THAT(installed, IsSupersetOf(PackagesOfKind("runtime")));
  EXPECT_THAT(installed, IsSupersetOf(PackagesOfKind("test")));
}

// buildah, podman and mmdebstrap are for scripts/image-test.sh only: the test suite does not
// need them, and the image must not carry them.
TEST(ImageTestScript, InstallsExactlyTheImageLinesWhichNeitherSetupNorTheDockerfileInstalls) {
  std::vector<std::string> image_tools = PackagesOfKind("image");
  ASSERT_THAT(image_tools, IsSupersetOf({"buildah", "mmdebstrap", "podman"}));
  EXPECT_THAT(ScriptSelection(kSourceDir + "/scripts/image-test.sh"), ElementsAreArray(image_tools));
  std::vector<std::string> setup = ScriptSelection(kSourceDir + "/scripts/setup.sh");
  for (const std::string& tool : image_tools) {
    EXPECT_THAT(setup, ::testing::Not(::testing::Contains(tool))) << "setup.sh installs " << tool;
  }
}

TEST(Dockerfile, BuildStageBuildsAndRunsTheUnitTestsOnBookworm) {
  std::vector<Stage> stages = Dockerfile();
  ASSERT_GE(stages.size(), 2u);
  EXPECT_EQ(stages.front().image, "debian:bookworm");
  std::string runs;
  for (const Instruction& instruction : stages.front().instructions) {
    if (instruction.keyword == "RUN") runs += instruction.arguments + "\n";
  }
  EXPECT_THAT(runs, ::testing::HasSubstr("scripts/build.sh"));
  EXPECT_THAT(runs, ::testing::ContainsRegex("ctest --test-dir build -L unit"));
}

TEST(Dockerfile, RuntimeStageShipsTheThreeBinariesAsNonRootWithTheAgentAsEntrypoint) {
  std::vector<Stage> stages = Dockerfile();
  ASSERT_GE(stages.size(), 2u);
  const Stage& runtime = stages.back();
  EXPECT_THAT(runtime.image, ::testing::StartsWith("debian:bookworm"));
  std::string copied;
  std::string user;
  std::string entrypoint;
  for (const Instruction& instruction : runtime.instructions) {
    if (instruction.keyword == "COPY" && instruction.arguments.find("--from=" + stages.front().name) != std::string::npos) {
      copied += instruction.arguments;
    }
    if (instruction.keyword == "USER") user = Words(instruction.arguments).at(0);
    if (instruction.keyword == "ENTRYPOINT") entrypoint = instruction.arguments;
  }
  for (std::string_view binary : {"modelcache-agent", "modelcache-coordinator", "modelcachectl"}) {
    EXPECT_THAT(copied, ::testing::HasSubstr(std::string(binary))) << binary << " is not copied into the image";
  }
  EXPECT_THAT(copied, ::testing::HasSubstr("/usr/local/bin/"));
  // The manifests run the pods with runAsUser 10001.
  EXPECT_EQ(user, "10001:10001");
  EXPECT_THAT(entrypoint, ::testing::HasSubstr("\"/usr/local/bin/modelcache-agent\""));
}

// The build stage installs the binaries from where CMake puts them.
TEST(Dockerfile, BinaryPathsAreTheCMakeTargets) {
  std::string runs;
  for (const Instruction& instruction : Dockerfile().front().instructions) runs += instruction.arguments + "\n";
  struct Target {
    std::string folder;
    std::string name;
  };
  for (const Target& target : {Target{"agent", "modelcache-agent"}, Target{"coordinator", "modelcache-coordinator"},
                               Target{"cli", "modelcachectl"}}) {
    EXPECT_THAT(runs, ::testing::HasSubstr("build/" + target.folder + "/" + target.name + " "));
    EXPECT_THAT(ReadFile(kSourceDir + "/" + target.folder + "/CMakeLists.txt"),
                ::testing::HasSubstr("add_executable(" + target.name));
  }
}

TEST(DockerIgnore, KeepsBuildOutputOutAndSourcesIn) {
  std::vector<std::string> patterns;
  std::istringstream in(ReadFile(kSourceDir + "/.dockerignore"));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    while (!line.empty() && line.back() == '/') line.pop_back();
    patterns.push_back(line);
  }
  auto ignored = [&](const std::string& path) {
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const std::string& pattern) { return fnmatch(pattern.c_str(), path.c_str(), 0) == 0; });
  };
  EXPECT_TRUE(ignored("build"));
  EXPECT_TRUE(ignored(".git"));
  for (std::string needed : {"Dockerfile", "CMakeLists.txt", "scripts", "scripts/packages.txt",
                                    "scripts/build.sh", "common", "agent", "coordinator", "cli", "proto", "tests"}) {
    EXPECT_FALSE(ignored(needed)) << needed << " is needed by the image build";
  }
}

}  // namespace
