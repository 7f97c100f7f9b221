// Fault cases of issue 11 (§6) about the cache volume itself: a real small filesystem (a
// loop-mounted ext4 image) that another writer fills in the middle of a fill, a model larger
// than the volume, the agent's quota, and a cache root that is mounted read-only. The real
// agent against nginx on 127.0.0.1. Each case checks the three promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/sha256.h"
#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::CtlResult;
using testing::NginxLocation;
using testing::NginxServer;

constexpr uint64_t kMiB = 1 << 20;

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

// The origin: <www>/<model>/ with weights.bin of `size` bytes and its listing, served by nginx
// at `rate` per connection ("" for full speed).
class Origin {
 public:
  void Start(const fs::path& www, const std::string& model, uint64_t size, const std::string& rate) {
    files_ = testing::WriteRandomModel(www / model, {{"config.json", 500}, {"weights.bin", size}});
    ASSERT_TRUE(testing::WriteTestFile(www / model / "modelcache.json", testing::HttpListingJson(files_)));
    NginxLocation location;
    location.prefix = "/" + model + "/";
    if (!rate.empty()) location.extra_directives = "limit_rate " + rate + ";";
    absl::StatusOr<std::unique_ptr<NginxServer>> server =
        NginxServer::Start({.root = www.string(), .locations = {location}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    source_ = server_->BaseUrl() + "/" + model + "/";
  }
  const std::string& Source() const { return source_; }
  // Body bytes of weights.bin sent so far.
  uint64_t WeightsBytes() const {
    uint64_t bytes = 0;
    for (const testing::AccessRecord& record : server_->AccessLog()) {
      if (record.uri.ends_with("/weights.bin")) bytes += record.bytes;
    }
    return bytes;
  }
  void ExpectPublished(const fs::path& folder) const {
    for (const v1::ManifestFile& file : files_) {
      EXPECT_EQ(Sha256OfFile(folder / file.path()).value_or(""), file.sha256()) << file.path();
    }
  }

 private:
  std::vector<v1::ManifestFile> files_;
  std::unique_ptr<NginxServer> server_;
  std::string source_;
};

// The cache root is a 64 MiB ext4 filesystem of its own (an image file on a loop device, no
// reserved blocks), so that a full disk is a real ENOSPC from the kernel.
class FaultDisks : public testing::FaultCase {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root to loop-mount an ext4 image (running as uid " << geteuid()
                   << "): no real small filesystem to fill";
    }
    const fs::path image = dir_.Path() / "volume.img";
    fs::create_directories(dir_.Path() / "cache");
    { std::ofstream(image).close(); }
    fs::resize_file(image, 64 * kMiB);
    if (std::string error = RunProgram(dir_.Path(), {"mkfs.ext4", "-q", "-F", "-m", "0", image.string()});
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
  }

  void TearDown() override {
    agent_.reset();  // before the volume goes
    if (mounted_) umount2((dir_.Path() / "cache").c_str(), MNT_DETACH);
  }

  // Writes zeros to `path` until the filesystem refuses (ENOSPC), in smaller and smaller
  // writes (ext4 answers ENOSPC to a big write while a few blocks are still free), and syncs;
  // the bytes written.
  static uint64_t FillUp(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return 0;
    std::vector<char> zeros(kMiB / 4, 0);
    uint64_t written = 0;
    for (size_t size : {zeros.size(), size_t{4096}, size_t{1024}}) {
      for (;;) {
        const ssize_t n = ::write(fd, zeros.data(), size);
        if (n > 0) written += static_cast<uint64_t>(n);
        if (n != static_cast<ssize_t>(size)) break;
      }
    }
    ::fsync(fd);
    ::close(fd);
    return written;
  }

  bool mounted_ = false;
  Origin origin_;
};

TEST_F(FaultDisks, AVolumeFilledByAnotherWriterMidFillFailsCleanlyAndFillsOnceThereIsRoom) {
  // nginx sends the first `limit_rate` bytes of an answer at once and the rest at that rate:
  // 1 MiB chunks at 256 KiB/s take 3 s each, eight at a time, so the fill takes about 6 s.
  ASSERT_NO_FATAL_FAILURE(origin_.Start(dir_.Path() / "www", "m", 16 * kMiB, "256k"));
  ASSERT_NO_FATAL_FAILURE(StartAgent({.extra_yaml = "fill: {chunkSize: 1Mi, concurrency: 8}\n"}));
  std::unique_ptr<testing::CtlProcess> fetch = testing::CtlProcess::Start(
      Ctl(), {"fetch", "--model", "m", "--version", "v1", "--source", origin_.Source()});
  ASSERT_NE(fetch, nullptr);
  // The fill has opened (and allocated) its files and written its first journal: it is under way.
  ASSERT_TRUE(testing::PollUntil(
      [&] { return fs::exists(cache_root_ / "staging" / "m@v1" / "journal.json"); },
      std::chrono::seconds(60)))
      << agent_->Log();
  ASSERT_EQ(origin_.WeightsBytes(), 0u) << "no chunk may be done yet: the origin is too fast";
  const fs::path filler = cache_root_ / "filler";
  EXPECT_GT(FillUp(filler), 0u);

  CtlResult full = fetch->Wait();
  // Promise 1: RESOURCE_EXHAUSTED (the code of a full disk) naming the model and the path.
  EXPECT_EQ(full.exit_code, 4) << full.err << agent_->Log();
  EXPECT_EQ(full.out, "");
  EXPECT_THAT(full.err, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(full.err, HasSubstr("m@v1"));
  EXPECT_THAT(full.err, HasSubstr(cache_root_.string()));
  // Promises 2 and 3.
  EXPECT_FALSE(fs::exists(cache_root_ / "models" / "m"));
  ExpectNothingPartialAndBystanderUntouched();

  // With room again the same fetch fills the model.
  fs::remove(filler);
  CtlResult again = Fetch("m", origin_.Source());
  ASSERT_EQ(again.exit_code, 0) << again.err << agent_->Log();
  origin_.ExpectPublished(cache_root_ / "models" / "m" / "v1");
  ExpectNothingPartialAndBystanderUntouched();
}

TEST_F(FaultDisks, AModelLargerThanTheVolumeIsResourceExhaustedBeforeAnyByteIsFetched) {
  ASSERT_NO_FATAL_FAILURE(origin_.Start(dir_.Path() / "www", "big", 80 * kMiB, ""));
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  CtlResult big = Fetch("big", origin_.Source());
  EXPECT_EQ(big.exit_code, 4) << big.err;
  EXPECT_EQ(big.out, "");
  // Promise 1: what it needs and what is free, and where.
  EXPECT_THAT(big.err, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(big.err, HasSubstr("big@v1"));
  EXPECT_THAT(big.err, HasSubstr("free"));
  EXPECT_EQ(origin_.WeightsBytes(), 0u);
  CtlResult list = RunCtl(Ctl(), {"list"});
  EXPECT_THAT(list.out, HasSubstr("bystander"));
  EXPECT_THAT(list.out, Not(HasSubstr("big")));
  ExpectNothingPartialAndBystanderUntouched({"big"});
}

TEST_F(FaultDisks, AReadOnlyCacheRootIsRefusedNamingItAndTheModelsOnItStayReadable) {
  ASSERT_EQ(RunProgram(dir_.Path(), {"mount", "-o", "remount,ro", cache_root_.string()}), "");
  ASSERT_NO_FATAL_FAILURE(origin_.Start(dir_.Path() / "www", "m", kMiB, ""));
  testing::AgentProcessOptions options;
  options.directory = dir_.Path();
  options.node_name = "fault-node";
  options.cache_root = cache_root_;
  options.socket = dir_.Path() / "agent.sock";
  options.network_allow = testing::LoopbackOrigins();
  absl::StatusOr<std::unique_ptr<testing::AgentProcess>> agent =
      testing::AgentProcess::Start(std::move(options));
  if (!agent.ok()) {
    // Refused at start: the message names the cache root and why.
    EXPECT_THAT(std::string(agent.status().message()), HasSubstr(cache_root_.string()));
    EXPECT_THAT(std::string(agent.status().message()), HasSubstr("Read-only file system"));
  } else {
    agent_ = *std::move(agent);
    CtlResult result = Fetch("m", origin_.Source());
    EXPECT_NE(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, "");
    EXPECT_THAT(result.err, HasSubstr(cache_root_.string()));
    EXPECT_THAT(result.err, HasSubstr("Read-only file system"));
    EXPECT_EQ(origin_.WeightsBytes(), 0u);
  }
  ExpectNothingPartialAndBystanderUntouched({"m"});
}

class FaultQuota : public testing::FaultCase {
 protected:
  Origin origin_;
};

TEST_F(FaultQuota, AModelOverTheAgentsQuotaIsResourceExhaustedNamingTheQuota) {
  ASSERT_NO_FATAL_FAILURE(origin_.Start(dir_.Path() / "www", "m", 6 * kMiB, ""));
  // The bystander holds about 3 MiB of the 8 MiB quota.
  ASSERT_NO_FATAL_FAILURE(
      StartAgent({.extra_yaml = "modelsCacheStorage: {enabled: true, storageSize: 8Mi}\n"}));
  CtlResult result = Fetch("m", origin_.Source());
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_THAT(result.err, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(result.err, HasSubstr("m@v1"));
  EXPECT_THAT(result.err, HasSubstr("quota"));
  EXPECT_EQ(origin_.WeightsBytes(), 0u);
  ExpectNothingPartialAndBystanderUntouched({"m"});
}

}  // namespace
}  // namespace modelcache
