// Cache volume maintenance end to end: the real modelcache-agent and modelcachectl binaries
// against a real nginx origin on 127.0.0.1. The storage check at start, cleanup with df
// numbers, verify + quarantine, repair of only the bad file, migrate between two volumes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <fstream>

#include "agent/store/layout.h"
#include "agent/store/volume_id.h"
#include "common/sha256.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/source_access.h"
#include "tests/testing/http_get.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/random_model.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::NginxOptions;
using testing::NginxServer;
using testing::PollUntil;
using testing::Subprocess;
using testing::SubprocessOptions;
using testing::TempDir;

constexpr auto kCtlTimeout = std::chrono::seconds(120);
constexpr uint32_t kTmpfsMagic = 0x01021994;

std::string CtlBinary() { return std::string(MODELCACHE_BINARY_DIR) + "/cli/modelcachectl"; }

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// The number after `"key": ` (protobuf JSON prints uint64 as a quoted string).
uint64_t JsonNumber(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) return 0;
  at += key.size() + 4;
  if (json[at] == '"') ++at;
  return std::strtoull(json.c_str() + at, nullptr, 10);
}

struct CtlResult {
  testing::ExitStatus exit;
  std::string out;
  std::string err;
};

class AgentMaintenanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = dir_.Path() / "run" / "agent.sock";
    cache_root_ = dir_.Path() / "cache";
    // Two files: a byte flipped in one must cost only that one on repair.
    origin_files_ = testing::WriteRandomModel(
        dir_.Path() / "origin" / "m", {{"config.json", 70'000}, {"weights/w.bin", 3u << 20}});
    testing::WriteTestFile(dir_.Path() / "origin" / "m" / "modelcache.json",
                           testing::HttpListingJson(origin_files_));
    for (const auto& file : origin_files_) model_bytes_ += file.size();
  }

  void StartOrigin() {
    NginxOptions options;
    options.root = (dir_.Path() / "origin").string();
    absl::StatusOr<std::unique_ptr<NginxServer>> server = NginxServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    origin_ = *std::move(server);
  }
  std::string Url() const { return origin_->BaseUrl() + "/m/"; }

  void StartAgent(const std::string& extra_yaml = "") {
    metrics_port_ = testing::FreeTcpPort();
    absl::StatusOr<std::unique_ptr<testing::AgentProcess>> agent = testing::AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = "maint",
         .cache_root = cache_root_,
         .socket = socket_,
         .metrics_address = "127.0.0.1:" + std::to_string(metrics_port_),
         .log_level = "debug",
         .network_allow = testing::LoopbackOrigins(),  // the origin listens on 127.0.0.1
         .extra_yaml = extra_yaml});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }
  std::string AgentLog() const { return agent_ ? agent_->Log() : ""; }

  CtlResult Ctl(std::vector<std::string> args) {
    std::string tag = std::to_string(ctl_runs_++);
    SubprocessOptions options;
    options.argv = {CtlBinary()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.environment = {"MODELCACHE_DISABLE=", "AIOLI_DISABLE_MODEL_CACHE=",
                           "MODELCACHE_SOCKET=" + socket_.string()};
    options.stdout_path = (dir_.Path() / ("ctl-" + tag + ".out")).string();
    options.stderr_path = (dir_.Path() / ("ctl-" + tag + ".err")).string();
    CtlResult result;
    absl::StatusOr<std::unique_ptr<Subprocess>> ctl = Subprocess::Start(options);
    if (!ctl.ok()) {
      ADD_FAILURE() << ctl.status();
      return result;
    }
    absl::StatusOr<testing::ExitStatus> exit = (*ctl)->WaitExit(kCtlTimeout);
    EXPECT_TRUE(exit.ok()) << "modelcachectl did not finish: " << exit.status();
    if (exit.ok()) result.exit = *exit;
    result.out = testing::ReadTestFile(options.stdout_path);
    result.err = testing::ReadTestFile(options.stderr_path);
    return result;
  }

  CtlResult Fetch(std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"fetch", "--model", "m", "--version", "v1", "--source", Url()};
    args.insert(args.end(), more.begin(), more.end());
    return Ctl(std::move(args));
  }

  // Fills m@v1 through the agent; returns its folder.
  fs::path FillModel() {
    CtlResult fetched = Fetch();
    EXPECT_TRUE(fetched.exit.Success()) << fetched.err << AgentLog();
    return Trim(fetched.out);
  }

  std::string VolumeId(const fs::path& root) {
    absl::StatusOr<VolumeIdRecord> record = ReadVolumeId(CacheLayout(root));
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? record->id : "";
  }

  // Body bytes nginx sent for `uri`, once the log has at least `at_least` of them (nginx
  // logs a request after answering it).
  uint64_t OriginBytes(const std::string& uri, uint64_t at_least = 0) {
    uint64_t bytes = 0;
    PollUntil(
        [&] {
          bytes = 0;
          for (const testing::AccessRecord& record : origin_->AccessLog()) {
            if (record.uri == uri) bytes += record.bytes;
          }
          return bytes >= at_least;
        },
        std::chrono::seconds(5));
    return bytes;
  }

  void ExpectOriginFiles(const fs::path& dir) {
    for (const auto& file : origin_files_) {
      absl::StatusOr<std::string> digest = Sha256OfFile(dir / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << dir / file.path();
    }
  }

  TempDir dir_;
  fs::path socket_;
  fs::path cache_root_;
  uint16_t metrics_port_ = 0;
  std::vector<v1::ManifestFile> origin_files_;
  uint64_t model_bytes_ = 0;
  std::unique_ptr<NginxServer> origin_;
  std::unique_ptr<testing::AgentProcess> agent_;  // declared after dir_: stopped before the dir goes
  int ctl_runs_ = 0;
};

// --- storage check ---------------------------------------------------------------------------

TEST_F(AgentMaintenanceTest, AnUnsupportedFilesystemIsRefusedAndClientsFallBack) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(
      StartAgent("modelsCacheStorage: {enabled: true}\ntestOnlyFilesystemType: tmpfs\n"));
  CtlResult refused = Fetch();
  EXPECT_EQ(refused.exit.code, 4) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(refused.err, HasSubstr("cache refused: tmpfs at " + cache_root_.string()));
  EXPECT_THAT(AgentLog(), HasSubstr("Z error "));
  EXPECT_THAT(AgentLog(), HasSubstr("storage check refused the cache path=" + cache_root_.string() +
                                    " type=tmpfs magic=0x01021994 type_overridden_for_tests=true"));
  EXPECT_THAT(AgentLog(), HasSubstr(" error=\"not NFS or a local disk\" next=\"caching refused "
                                    "(set modelsCacheStorage.bypassStorageCheck: true to use it "
                                    "anyway)\""));
  // Ready: pods must reach the agent to learn that they have to download on their own.
  testing::HttpResponse ready =
      testing::HttpGet("http://127.0.0.1:" + std::to_string(metrics_port_) + "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_FALSE(fs::exists(cache_root_ / "models")) << "a refused cache must not be used";

  fs::path dest = dir_.Path() / "dest";
  CtlResult fallback = Fetch({"--fallback", "--dest", dest.string()});
  ASSERT_TRUE(fallback.exit.Success()) << fallback.err;
  ExpectOriginFiles(dest / "models" / "m" / "v1");
  // Maintenance is refused too, naming the reason.
  CtlResult cleanup = Ctl({"cleanup", "--volume", "x", "--dry-run"});
  EXPECT_EQ(cleanup.exit.code, 4);
  EXPECT_THAT(cleanup.err, HasSubstr("cache refused"));
}

TEST_F(AgentMaintenanceTest, BypassStorageCheckUsesAnUnsupportedFilesystemWithAWarning) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent(
      "modelsCacheStorage: {enabled: true, bypassStorageCheck: true}\ntestOnlyFilesystemType: tmpfs\n"));
  fs::path ready = FillModel();
  EXPECT_EQ(ready, cache_root_ / "models" / "m" / "v1");
  ExpectOriginFiles(ready);
  EXPECT_THAT(AgentLog(), HasSubstr("Z warning "));
  EXPECT_THAT(AgentLog(), HasSubstr("storage check: unsupported filesystem path=" +
                                    cache_root_.string() + " type=tmpfs"));
  EXPECT_THAT(AgentLog(), HasSubstr("next=\"used anyway because"));
}

TEST_F(AgentMaintenanceTest, ARealTmpfsIsRefused) {
  struct statfs info;
  if (::statfs("/dev/shm", &info) != 0 || static_cast<uint32_t>(info.f_type) != kTmpfsMagic ||
      ::access("/dev/shm", W_OK) != 0) {
    GTEST_SKIP() << "no writable tmpfs at /dev/shm";
  }
  char pattern[] = "/dev/shm/modelcache-test-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  struct RemoveOnExit {
    fs::path path;
    ~RemoveOnExit() { fs::remove_all(path); }
  } shm{pattern};
  cache_root_ = shm.path / "cache";
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent("modelsCacheStorage: {enabled: true}\n"));
  CtlResult refused = Fetch();
  EXPECT_EQ(refused.exit.code, 4) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("cache refused: tmpfs at " + cache_root_.string()));
  // The line README.md's troubleshooting section quotes.
  EXPECT_THAT(AgentLog(),
              HasSubstr(" error agent storage check refused the cache path=" + cache_root_.string() +
                        " type=tmpfs magic=0x01021994 error=\"not NFS or a local disk\" "
                        "next=\"caching refused (set modelsCacheStorage.bypassStorageCheck: true "
                        "to use it anyway)\"\n"));
  EXPECT_THAT(AgentLog(), Not(HasSubstr("type_overridden_for_tests")));
  agent_.reset();  // before the folder goes
}

// --- cleanup ---------------------------------------------------------------------------------

TEST_F(AgentMaintenanceTest, CleanupListsWithSizesDryRunKeepsAndRealRunFreesWhatWasAsked) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  fs::path model = FillModel();
  ASSERT_TRUE(fs::exists(model));
  std::string volume = VolumeId(cache_root_);
  // Leftovers: an unknown folder, something in trash, an abandoned fill.
  testing::WriteRandomFile(cache_root_ / "junk" / "blob", 200'000, 7);
  testing::WriteRandomFile(cache_root_ / "trash" / "old" / "f", 100'000, 8);
  testing::WriteRandomFile(cache_root_ / "staging" / "gone@v9" / "tree" / "f", 50'000, 9);

  CtlResult listing = Ctl({"cleanup", "--volume", volume, "--dry-run", "--models", "m",
                           "--unknown", "--trash", "--staging-older-than", "0s"});
  ASSERT_TRUE(listing.exit.Success()) << listing.err;
  EXPECT_THAT(listing.out, HasSubstr("models/m/v1"));
  EXPECT_THAT(listing.out, HasSubstr("junk"));
  EXPECT_THAT(listing.out, HasSubstr("trash/old"));
  EXPECT_THAT(listing.out, HasSubstr("staging/gone@v9"));
  EXPECT_THAT(listing.out, HasSubstr("would remove"));
  EXPECT_THAT(listing.out, HasSubstr("df: "));
  EXPECT_TRUE(fs::exists(model)) << "dry run removed the model";
  EXPECT_TRUE(fs::exists(cache_root_ / "junk"));

  CtlResult json = Ctl({"cleanup", "--volume", volume, "--dry-run", "--unknown", "--json"});
  ASSERT_TRUE(json.exit.Success()) << json.err;
  EXPECT_EQ(JsonNumber(json.out, "planned_bytes"), 200'000u) << json.out;
  EXPECT_GT(JsonNumber(json.out, "capacity_bytes"), 0u) << json.out;

  CtlResult wrong = Ctl({"cleanup", "--volume", "0123456789abcdef0123456789abcdef", "--dry-run"});
  EXPECT_EQ(wrong.exit.code, 4);
  EXPECT_THAT(wrong.err, HasSubstr("NOT_FOUND"));

  uint64_t model_tree_bytes = 0;  // the files, the manifest and the access stamp
  for (const auto& entry : fs::recursive_directory_iterator(model)) {
    if (entry.is_regular_file()) model_tree_bytes += entry.file_size();
  }
  ASSERT_GT(model_tree_bytes, model_bytes_);
  CtlResult real = Ctl({"cleanup", "--volume", volume, "--models", "m", "--unknown", "--trash",
                        "--staging-older-than", "0s", "--json"});
  ASSERT_TRUE(real.exit.Success()) << real.err << AgentLog();
  EXPECT_EQ(JsonNumber(real.out, "freed_bytes"), model_tree_bytes + 200'000 + 100'000 + 50'000)
      << real.out;
  EXPECT_THAT(real.out, HasSubstr("\"before\""));
  EXPECT_THAT(real.out, HasSubstr("\"after\""));
  EXPECT_FALSE(fs::exists(model));
  EXPECT_FALSE(fs::exists(cache_root_ / "junk"));
  EXPECT_FALSE(fs::exists(cache_root_ / "trash" / "old"));
  EXPECT_FALSE(fs::exists(cache_root_ / "staging" / "gone@v9"));
  // The cache's index forgot the model: it is no longer listed, and a fetch fills it again.
  CtlResult list = Ctl({"list"});
  EXPECT_THAT(list.out, Not(HasSubstr("m ")));
  ExpectOriginFiles(FillModel());

  CtlResult table = Ctl({"cleanup", "--volume", volume, "--unknown"});
  ASSERT_TRUE(table.exit.Success()) << table.err;
  EXPECT_THAT(table.out, HasSubstr("df before: "));
  EXPECT_THAT(table.out, HasSubstr("df after: "));
}

// --- verify and repair -----------------------------------------------------------------------

TEST_F(AgentMaintenanceTest, VerifyFindsAFlippedByteAndQuarantinesRepairFetchesOnlyThatFile) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  fs::path model = FillModel();
  uint64_t weights_bytes = origin_files_[1].size();
  uint64_t config_bytes = origin_files_[0].size();
  ASSERT_EQ(OriginBytes("/m/weights/w.bin", weights_bytes), weights_bytes);
  ASSERT_EQ(OriginBytes("/m/config.json", config_bytes), config_bytes);

  CtlResult clean = Ctl({"verify"});
  EXPECT_EQ(clean.exit.code, 0) << clean.out << clean.err;
  EXPECT_THAT(clean.out, HasSubstr("ok"));

  {  // one byte in the middle of the big file
    std::fstream file(model / "weights" / "w.bin", std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(1'000'000);
    char byte = 0;
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x40);
    file.seekp(1'000'000);
    file.write(&byte, 1);
  }
  CtlResult damaged = Ctl({"verify", "m@v1"});
  EXPECT_EQ(damaged.exit.code, 1) << damaged.out << damaged.err;
  EXPECT_THAT(damaged.out, HasSubstr("weights/w.bin"));
  EXPECT_THAT(damaged.out, HasSubstr("sha256 mismatch"));
  EXPECT_THAT(damaged.out, HasSubstr("quarantined to quarantine/m@v1-"));
  EXPECT_FALSE(fs::exists(model)) << "a damaged model must leave models/";
  EXPECT_FALSE(fs::is_empty(cache_root_ / "quarantine"));
  EXPECT_THAT(Ctl({"list"}).out, Not(HasSubstr("m ")));

  CtlResult repaired = Ctl({"repair", "m@v1"});
  ASSERT_TRUE(repaired.exit.Success()) << repaired.err << AgentLog();
  EXPECT_THAT(repaired.out, HasSubstr("re-fetched weights/w.bin"));
  ExpectOriginFiles(model);
  // Only the bad file came from the origin again.
  EXPECT_EQ(OriginBytes("/m/weights/w.bin", 2 * weights_bytes), 2 * weights_bytes);
  EXPECT_EQ(OriginBytes("/m/config.json"), config_bytes);
  CtlResult list = Ctl({"list"});
  EXPECT_THAT(list.out, HasSubstr("m "));
  CtlResult again = Ctl({"repair", "m@v1"});
  ASSERT_TRUE(again.exit.Success()) << again.err;
  EXPECT_THAT(again.out, HasSubstr("nothing to repair"));
}

TEST_F(AgentMaintenanceTest, RepairOfAPublishedDamagedModelQuarantinesAndRefetches) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  fs::path model = FillModel();
  uint64_t config_bytes = origin_files_[0].size();
  uint64_t weights_bytes = origin_files_[1].size();
  ASSERT_EQ(OriginBytes("/m/weights/w.bin", weights_bytes), weights_bytes);
  fs::resize_file(model / "config.json", 10);  // truncated

  CtlResult repaired = Ctl({"repair", "m@v1", "--json"});
  ASSERT_TRUE(repaired.exit.Success()) << repaired.err << AgentLog();
  EXPECT_EQ(JsonNumber(repaired.out, "bytes_refetched"), config_bytes) << repaired.out;
  EXPECT_EQ(JsonNumber(repaired.out, "bytes_kept"), weights_bytes) << repaired.out;
  ExpectOriginFiles(model);
  EXPECT_EQ(OriginBytes("/m/config.json", 2 * config_bytes), 2 * config_bytes);
  EXPECT_EQ(OriginBytes("/m/weights/w.bin"), weights_bytes);

  // A staging folder left behind (here without a journal) does not block a repair: the
  // cache's fill takes it over, starting afresh since nothing in it can be trusted.
  fs::resize_file(model / "config.json", 10);
  testing::WriteTestFile(cache_root_ / "staging" / "m@v1" / "leftover", "x");
  CtlResult over_leftover = Ctl({"repair", "m@v1"});
  ASSERT_TRUE(over_leftover.exit.Success()) << over_leftover.err << AgentLog();
  ExpectOriginFiles(model);
  EXPECT_FALSE(fs::exists(cache_root_ / "staging" / "m@v1"));

  CtlResult absent = Ctl({"repair", "other@v1"});
  EXPECT_EQ(absent.exit.code, 4);
  EXPECT_THAT(absent.err, HasSubstr("NOT_FOUND"));
}

TEST_F(AgentMaintenanceTest, ThePeriodicScrubQuarantinesADamagedModel) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent("scrub: {every: 1s, rate: 100Mi}\n"));
  fs::path model = FillModel();
  ASSERT_TRUE(fs::exists(model));
  // Clean passes leave it alone.
  const std::string clean_pass = "scrub pass done volume=" + cache_root_.string() + " quarantined=0";
  ASSERT_TRUE(PollUntil([&] { return AgentLog().find(clean_pass) != std::string::npos; },
                        std::chrono::seconds(20)))
      << AgentLog();
  EXPECT_TRUE(fs::exists(model));
  fs::resize_file(model / "config.json", 5);
  // Logged once the model was quarantined and dropped from the index.
  ASSERT_TRUE(PollUntil(
      [&] { return AgentLog().find("path=config.json error=\"has 5 bytes") != std::string::npos; },
      std::chrono::seconds(20)))
      << AgentLog();
  EXPECT_FALSE(fs::exists(model));
  EXPECT_FALSE(fs::is_empty(cache_root_ / "quarantine"));
  EXPECT_THAT(Ctl({"list"}).out, Not(HasSubstr("m ")));
}

// --- migrate ---------------------------------------------------------------------------------

TEST_F(AgentMaintenanceTest, MigrateCopiesToAnotherVolumeWithoutTheOriginAndBack) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  fs::path other = dir_.Path() / "other-volume";
  ASSERT_NO_FATAL_FAILURE(StartAgent("extraVolumes: [" + other.string() + "]\n"));
  fs::path model = FillModel();
  ASSERT_EQ(OriginBytes("/m/weights/w.bin", origin_files_[1].size()), origin_files_[1].size());
  size_t origin_requests = origin_->AccessLog().size();
  std::string main_id = VolumeId(cache_root_);
  std::string other_id = VolumeId(other);
  ASSERT_NE(main_id, other_id);
  struct stat before;
  ASSERT_EQ(::stat((model / "weights" / "w.bin").c_str(), &before), 0);

  CtlResult volumes = Ctl({"volumes"});
  ASSERT_TRUE(volumes.exit.Success()) << volumes.err;
  EXPECT_THAT(volumes.out, HasSubstr(main_id));
  EXPECT_THAT(volumes.out, HasSubstr(other_id));

  CtlResult migrated = Ctl({"migrate", "--from", main_id, "--to", other_id});
  ASSERT_TRUE(migrated.exit.Success()) << migrated.err << AgentLog();
  EXPECT_THAT(migrated.out, HasSubstr("copied"));
  ExpectOriginFiles(other / "models" / "m" / "v1");
  EXPECT_TRUE(fs::exists(other / "models" / "m" / "v1" / kManifestFileName));
  EXPECT_TRUE(fs::is_empty(other / "staging"));
  // The origin volume is untouched and the origin server was not asked for anything.
  struct stat after;
  ASSERT_EQ(::stat((model / "weights" / "w.bin").c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  ExpectOriginFiles(model);
  EXPECT_EQ(origin_->AccessLog().size(), origin_requests);

  CtlResult twice = Ctl({"migrate", "--from", main_id, "--to", other_id, "--models", "m@v1"});
  ASSERT_TRUE(twice.exit.Success()) << twice.err;
  EXPECT_THAT(twice.out, HasSubstr("already on the target"));

  // Back into the serving cache after it lost the model: the agent serves it again as a hit.
  ASSERT_TRUE(Ctl({"cleanup", "--volume", main_id, "--models", "m"}).exit.Success());
  ASSERT_FALSE(fs::exists(model));
  CtlResult back = Ctl({"migrate", "--from", other_id, "--to", main_id, "--models", "m", "--json"});
  ASSERT_TRUE(back.exit.Success()) << back.err << AgentLog();
  EXPECT_EQ(JsonNumber(back.out, "bytes_copied"), model_bytes_) << back.out;
  CtlResult hit = Fetch();
  ASSERT_TRUE(hit.exit.Success()) << hit.err;
  EXPECT_THAT(hit.err, HasSubstr("already cached"));
  ExpectOriginFiles(model);
  EXPECT_EQ(origin_->AccessLog().size(), origin_requests);

  CtlResult unknown = Ctl({"migrate", "--from", main_id, "--to", "feedfeedfeedfeedfeedfeedfeedfeed"});
  EXPECT_EQ(unknown.exit.code, 4);
  EXPECT_THAT(unknown.err, HasSubstr("not mounted"));
}

}  // namespace
}  // namespace modelcache
