// A full cache costs a download, never a failed pod (issue 15). The cache root is a 64 MiB
// ext4 filesystem of its own (a loop-mounted image, no journal, so that freed blocks show at
// once), filled with older models: one leased by a pod, one pinned, three others. The real
// agent and coordinator, nginx on 127.0.0.1.
//  - A new model that does not fit: the agent asks the coordinator for room on demand, which
//    purges just enough of the others, least recently used first (the leased and the pinned
//    ones are older, and stay); the model is READY. `purge --dry-run --room` showed the plan
//    first, the audit log names the reason "room".
//  - A model bigger than everything that may be purged: RESOURCE_EXHAUSTED naming what is
//    kept, nothing purged, and `fetch --fallback` downloads it locally, exit 0.
// Each case checks the three promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "agent/store/space.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/registry_sources.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::CtlResult;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kOldModelBytes = 8 * kMiB;
constexpr auto kDeadline = 30s;
// Filled in this order: the leased and the pinned models are the least recently used.
const std::vector<std::string> kOldModels = {"leased", "pinned", "a", "b", "c"};

// Runs `argv` and returns "" on exit 0, else what went wrong (its stderr).
std::string RunProgram(const fs::path& directory, std::vector<std::string> argv) {
  testing::SubprocessOptions options;
  options.argv = std::move(argv);
  options.stdout_path = (directory / "run.out").string();
  options.stderr_path = (directory / "run.err").string();
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> process = testing::Subprocess::Start(options);
  if (!process.ok()) return std::string(process.status().message());
  absl::StatusOr<testing::ExitStatus> exit = (*process)->WaitExit(std::chrono::seconds(60));
  if (!exit.ok()) return std::string(exit.status().message());
  if (exit->Success()) return "";
  return exit->ToString() + ": " + testing::ReadTestFile(options.stderr_path);
}

class FaultFullCache : public testing::FaultCase {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root to loop-mount an ext4 image (running as uid " << geteuid()
                   << "): no volume of a fixed size to fill";
    }
    const fs::path image = dir_.Path() / "volume.img";
    fs::create_directories(dir_.Path() / "cache");
    { std::ofstream(image).close(); }
    fs::resize_file(image, 64 * kMiB);
    if (std::string error = RunProgram(dir_.Path(), {"mkfs.ext4", "-q", "-F", "-m", "0", "-O",
                                                     "^has_journal", image.string()});
        !error.empty()) {
      GTEST_SKIP() << "mkfs.ext4 failed, no ext4 image to mount: " << error;
    }
    if (std::string error = RunProgram(dir_.Path(), {"mount", "-o", "loop", image.string(),
                                                     (dir_.Path() / "cache").string()});
        !error.empty()) {
      GTEST_SKIP() << "cannot loop-mount an ext4 image here (a container without loop devices?): "
                   << error;
    }
    mounted_ = true;
    ASSERT_NO_FATAL_FAILURE(FaultCase::SetUp());

    // The coordinator's own rules stay out of the way: no quota, a pass once an hour.
    fs::create_directories(dir_.Path() / "coordinator");
    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start(
            {.directory = dir_.Path() / "coordinator",
             .storage_yaml = "{checkUnusedCachedModelsEvery: 1h, purgeUnusedCachedModelsAfter: 7d}"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    ASSERT_NO_FATAL_FAILURE(StartAgent({.coordinator = coordinator_->Address()}));
    // The bystander is pinned: it is not what these cases are about.
    ASSERT_EQ(Admin({"pin", "bystander@v1"}).exit_code, 0);
  }

  void TearDown() override {
    agent_.reset();  // before the volume goes
    coordinator_.reset();
    if (mounted_) umount2((dir_.Path() / "cache").c_str(), MNT_DETACH);
  }

  // Serves a model of one file of `bytes` and registers it as the model's source.
  std::string AddModel(const std::string& name, uint64_t bytes) {
    const fs::path www = dir_.Path() / "www";
    std::vector<v1::ManifestFile> files =
        testing::WriteRandomModel(www / name, {{"weights.bin", bytes}});
    EXPECT_TRUE(testing::WriteTestFile(www / name / "modelcache.json",
                                       testing::HttpListingJson(files)));
    if (!origin_) {
      absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
          testing::NginxServer::Start({.root = www.string()});
      EXPECT_TRUE(origin.ok()) << origin.status();
      if (origin.ok()) origin_ = *std::move(origin);
    }
    const std::string source = origin_->BaseUrl() + "/" + name + "/";
    CtlResult registered = Admin({"models", "set-source", name + "@v1", source});
    EXPECT_EQ(registered.exit_code, 0) << registered.err;
    ++registered_;
    EXPECT_TRUE(testing::WaitForRegisteredSources(agent_->LogPath(), registered_, kDeadline))
        << agent_->Log();
    return source;
  }

  CtlResult Admin(const std::vector<std::string>& args) {
    return testing::RunCtl({.directory = dir_.Path(), .coordinator = coordinator_->Address()},
                           args);
  }

  uint64_t FreeBytes() const {
    absl::StatusOr<VolumeSpace> space = ReadVolumeSpace(cache_root_);
    EXPECT_TRUE(space.ok()) << space.status();
    return space.ok() ? space->free_bytes : 0;
  }

  std::string VolumeId() {
    CtlResult volumes = testing::RunCtl(Ctl(), {"volumes", "--json"});
    std::smatch match;
    static const std::regex kId("\"volume_?[iI]d\": \"([0-9a-f]+)\"");
    EXPECT_TRUE(std::regex_search(volumes.out, match, kId)) << volumes.out << volumes.err;
    return match.size() > 1 ? match[1].str() : std::string();
  }

  // Fills the old models (the first with a pod's lease), pins "pinned", and waits until the
  // coordinator knows all of it: its room plan for `bytes` then takes exactly a and b.
  void FillOldModels(uint64_t room_bytes) {
    for (const std::string& name : kOldModels) {
      const std::string source = AddModel(name, kOldModelBytes);
      std::vector<std::string> more;
      if (name == "leased") more = {"--holder", "pod-1"};
      CtlResult fetched = Fetch(name, source, more);
      ASSERT_EQ(fetched.exit_code, 0) << name << ": " << fetched.err;
    }
    ASSERT_EQ(Admin({"pin", "pinned@v1"}).exit_code, 0);
    for (const std::string& name : kOldModels) hashes_[name] = testing::HashModel(cache_root_, name, "v1");
    volume_id_ = VolumeId();
    ASSERT_FALSE(volume_id_.empty());
    const std::string room = std::to_string(room_bytes);
    ASSERT_TRUE(testing::PollUntil(
        [&] {
          dry_run_ = Admin({"purge", "--dry-run", "--room", room, "--volume", volume_id_});
          return dry_run_.exit_code == 0 && dry_run_.out.find("a@v1") != std::string::npos &&
                 dry_run_.out.find("b@v1") != std::string::npos &&
                 dry_run_.out.find("leased@v1") == std::string::npos;
        },
        kDeadline, 200ms))
        << dry_run_.out << dry_run_.err << coordinator_->Log();
  }

  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<testing::NginxServer> origin_;
  bool mounted_ = false;
  int registered_ = 0;
  std::string volume_id_;
  CtlResult dry_run_;
  std::map<std::string, std::map<std::string, std::string>> hashes_;
};

TEST_F(FaultFullCache, ANewModelEvictsJustEnoughOldestFirstKeepingLeasedAndPinnedOnes) {
  ASSERT_NO_FATAL_FAILURE(FillOldModels(12 * kMiB));
  // The dry run shows what room on demand would take, and why.
  EXPECT_THAT(dry_run_.out, HasSubstr("room"));
  EXPECT_THAT(dry_run_.out, Not(HasSubstr("c@v1")));
  EXPECT_THAT(dry_run_.out, Not(HasSubstr("pinned@v1")));

  // 12 MiB more than is free: a and b (8 MiB each, the oldest that may go) make room.
  const uint64_t new_bytes = FreeBytes() + 12 * kMiB;
  const std::string source = AddModel("new", new_bytes);
  CtlResult fetched = Fetch("new", source);
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent_->Log();
  EXPECT_EQ(fetched.out, (cache_root_ / "models" / "new" / "v1").string() + "\n");
  EXPECT_EQ(testing::HashModel(cache_root_, "new", "v1").size(), 1u);

  EXPECT_FALSE(fs::exists(cache_root_ / "models" / "a" / "v1"));
  EXPECT_FALSE(fs::exists(cache_root_ / "models" / "b" / "v1"));
  for (const std::string& kept : {"leased", "pinned", "c"}) {
    EXPECT_EQ(testing::HashModel(cache_root_, kept, "v1"), hashes_[kept]) << kept;
  }
  CtlResult audit = Admin({"audit", "--kind", "purge", "--json"});
  EXPECT_THAT(audit.out, HasSubstr("room: for new@v1"));
  EXPECT_THAT(agent_->Log(), HasSubstr("room on demand made"));
  ExpectNothingPartialAndBystanderUntouched();
}

TEST_F(FaultFullCache, AModelBiggerThanAllThatMayBePurgedFailsAndFetchFallbackDownloadsIt) {
  ASSERT_NO_FATAL_FAILURE(FillOldModels(12 * kMiB));
  // More than free space plus a, b and c together.
  const uint64_t huge_bytes = FreeBytes() + 3 * kOldModelBytes + 4 * kMiB;
  const std::string source = AddModel("huge", huge_bytes);

  CtlResult failed = Fetch("huge", source);
  EXPECT_EQ(failed.exit_code, 4) << failed.err;
  EXPECT_THAT(failed.err, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(failed.err, HasSubstr("huge@v1"));
  EXPECT_THAT(failed.err, HasSubstr("room on demand"));
  EXPECT_THAT(failed.err, HasSubstr("pinned"));
  for (const std::string& name : kOldModels) {
    EXPECT_EQ(testing::HashModel(cache_root_, name, "v1"), hashes_[name]) << name << " purged";
  }

  const fs::path dest = dir_.Path() / "local";
  CtlResult fallback = Fetch("huge", source, {"--fallback", "--dest", dest.string()});
  ASSERT_EQ(fallback.exit_code, 0) << fallback.err;
  EXPECT_THAT(fallback.err, HasSubstr("the cache is full"));
  EXPECT_EQ(fallback.out, (dest / "models" / "huge" / "v1").string() + "\n");
  EXPECT_EQ(testing::FindPartialModel(dest), "");
  EXPECT_EQ(testing::HashModel(dest, "huge", "v1").size(), 1u);
  for (const std::string& name : kOldModels) {
    EXPECT_EQ(testing::HashModel(cache_root_, name, "v1"), hashes_[name]) << name;
  }
  ExpectNothingPartialAndBystanderUntouched({"huge"});
}

}  // namespace
}  // namespace modelcache
