// The real modelcache-agent and modelcachectl binaries against a real nginx origin (and
// s3rver), all on 127.0.0.1: what an init container sees.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "agent/store/manifest.h"
#include "common/sha256.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/source_access.h"
#include "tests/testing/http_get.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/s3rver_server.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::NginxLocation;
using testing::NginxOptions;
using testing::NginxServer;
using testing::PollUntil;
using testing::Subprocess;
using testing::SubprocessOptions;
using testing::TempDir;

constexpr auto kFetchTimeout = std::chrono::seconds(180);
// The big file crosses 256 MiB and ends in a short chunk.
constexpr uint64_t kBigFileBytes = (256ull << 20) + 12345;

std::string CtlBinary() { return std::string(MODELCACHE_BINARY_DIR) + "/cli/modelcachectl"; }

// --- the origin's models, generated once per build tree ------------------------------------

struct OriginFile {
  std::string path;
  uint64_t size;
  std::string sha256;
};

// Deterministic bytes (xorshift), fast enough for hundreds of MiB.
void WritePseudoRandomFile(const fs::path& path, uint64_t size, uint64_t seed) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::vector<uint64_t> block(1 << 17);  // 1 MiB
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t written = 0; written < size;) {
    for (uint64_t& word : block) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      word = state;
    }
    uint64_t n = std::min<uint64_t>(size - written, block.size() * sizeof(uint64_t));
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    written += n;
  }
}

std::string ListingJson(const std::vector<OriginFile>& files) {
  std::string json = "{\"files\": [";
  for (size_t i = 0; i < files.size(); ++i) {
    json += (i ? ", " : "") + std::string("{\"path\": \"") + files[i].path + "\", \"size\": " +
            std::to_string(files[i].size) + ", \"sha256\": \"" + files[i].sha256 + "\"}";
  }
  return json + "]}";
}

// Writes <dir>/<file>... and <dir>/modelcache.json; returns the files with their digests.
std::vector<OriginFile> WriteModel(const fs::path& dir,
                                   const std::vector<std::pair<std::string, uint64_t>>& files,
                                   uint64_t seed) {
  std::vector<OriginFile> written;
  for (const auto& [path, size] : files) {
    WritePseudoRandomFile(dir / path, size, seed++);
    absl::StatusOr<std::string> digest = Sha256OfFile(dir / path);
    EXPECT_TRUE(digest.ok()) << digest.status();
    written.push_back({path, size, digest.value_or("")});
  }
  std::ofstream(dir / "modelcache.json") << ListingJson(written);
  return written;
}

struct Origin {
  fs::path root;
  std::vector<OriginFile> big;    // /big/: config.json, weights/big.bin (>256 MiB), weights/b.bin
  std::vector<OriginFile> small;  // /small/: two small files
  uint64_t big_bytes = 0;
};

// The origin tree lives in the build dir so that the test processes ctest starts (one per
// test) share it; it is built in a temp folder and renamed into place, so a concurrent
// builder simply loses the race.
const Origin& SharedOrigin() {
  static const Origin origin = [] {
    Origin o;
    o.root = fs::path(MODELCACHE_BINARY_DIR) / "e2e-origin-v1";
    std::vector<std::pair<std::string, uint64_t>> big_files = {
        {"config.json", 1234}, {"weights/big.bin", kBigFileBytes}, {"weights/b.bin", 5u << 20}};
    std::vector<std::pair<std::string, uint64_t>> small_files = {{"tokenizer.json", 70'000},
                                                                 {"weights/s.bin", 1u << 20}};
    auto describe = [](const fs::path& dir, const std::vector<std::pair<std::string, uint64_t>>& files) {
      std::vector<OriginFile> described;
      for (const auto& [path, size] : files) {
        described.push_back({path, size, Sha256OfFile(dir / path).value_or("")});
      }
      return described;
    };
    if (!fs::exists(o.root / "complete")) {
      fs::path building = o.root.string() + ".building-" + std::to_string(getpid());
      fs::remove_all(building);
      std::vector<OriginFile> big = WriteModel(building / "big", big_files, 1);
      WriteModel(building / "small", small_files, 100);
      // Same files, one digest wrong: the fill must end in DATA_LOSS.
      fs::create_directories(building / "corrupt");
      std::vector<OriginFile> corrupt = big;
      corrupt.erase(corrupt.begin() + 1);  // keep it small: config.json and b.bin
      for (const OriginFile& file : corrupt) {
        fs::create_directories((building / "corrupt" / file.path).parent_path());
        fs::copy_file(building / "big" / file.path, building / "corrupt" / file.path);
      }
      corrupt.back().sha256[0] = corrupt.back().sha256[0] == '0' ? '1' : '0';
      std::ofstream(building / "corrupt" / "modelcache.json") << ListingJson(corrupt);
      std::ofstream(building / "complete") << "ok";
      std::error_code error;
      fs::rename(building, o.root, error);
      if (error) fs::remove_all(building);  // another test process finished first
    }
    o.big = describe(o.root / "big", big_files);
    o.small = describe(o.root / "small", small_files);
    for (const OriginFile& file : o.big) o.big_bytes += file.size;
    return o;
  }();
  return origin;
}

// --- processes ---------------------------------------------------------------------------

struct CtlResult {
  testing::ExitStatus exit;
  std::string out;
  std::string err;
};

class AgentE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_model_ = &SharedOrigin();
    socket_ = dir_.Path() / "run" / "agent.sock";
    cache_root_ = dir_.Path() / "cache";
  }

  void StartOrigin() {
    NginxOptions options;
    options.root = origin_model_->root.string();
    options.locations.push_back(NginxLocation{.prefix = "/forbidden/", .return_status = 403});
    // The same files, at 4 MiB/s per connection, so that fills last long enough to overlap
    // or to be interrupted.
    options.locations.push_back(NginxLocation{
        .prefix = "/slow/",
        .extra_directives = "alias " + origin_model_->root.string() + "/; limit_rate 4m;"});
    absl::StatusOr<std::unique_ptr<NginxServer>> server = NginxServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    origin_ = *std::move(server);
  }

  std::string Url(std::string_view path) const { return origin_->BaseUrl() + std::string(path); }

  // Starts the agent binary with a config file (plus `extra_yaml`) and waits for its socket.
  void StartAgent(const std::string& extra_yaml = "", std::vector<std::string> environment = {}) {
    if (metrics_port_ == 0) metrics_port_ = testing::FreeTcpPort();
    absl::StatusOr<std::unique_ptr<testing::AgentProcess>> agent = testing::AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = "e2e",
         .cache_root = cache_root_,
         .socket = socket_,
         .metrics_address = "127.0.0.1:" + std::to_string(metrics_port_),
         .log_level = "debug",
         .network_allow = testing::LoopbackOrigins(),  // nginx and s3rver on 127.0.0.1
         .extra_yaml = extra_yaml,
         .environment = std::move(environment)});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }

  std::string AgentLog() const { return agent_ ? agent_->Log() : ""; }

  SubprocessOptions CtlOptions(std::vector<std::string> args, std::vector<std::string> environment,
                               const std::string& tag) {
    SubprocessOptions options;
    options.argv = {CtlBinary()};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.environment = {"MODELCACHE_DISABLE=", "AIOLI_DISABLE_MODEL_CACHE=",
                           "MODELCACHE_SOCKET=" + socket_.string()};
    options.environment.insert(options.environment.end(), environment.begin(), environment.end());
    options.stdout_path = (dir_.Path() / ("ctl-" + tag + ".out")).string();
    options.stderr_path = (dir_.Path() / ("ctl-" + tag + ".err")).string();
    return options;
  }

  CtlResult Ctl(std::vector<std::string> args, std::vector<std::string> environment = {}) {
    std::string tag = std::to_string(ctl_runs_++);
    SubprocessOptions options = CtlOptions(std::move(args), std::move(environment), tag);
    CtlResult result;
    absl::StatusOr<std::unique_ptr<Subprocess>> ctl = Subprocess::Start(options);
    if (!ctl.ok()) {
      ADD_FAILURE() << ctl.status();
      return result;
    }
    absl::StatusOr<testing::ExitStatus> exit = (*ctl)->WaitExit(kFetchTimeout);
    EXPECT_TRUE(exit.ok()) << "modelcachectl did not finish: " << exit.status();
    if (exit.ok()) result.exit = *exit;
    result.out = testing::ReadTestFile(options.stdout_path);
    result.err = testing::ReadTestFile(options.stderr_path);
    return result;
  }

  CtlResult Fetch(std::string_view name, std::string_view source, std::vector<std::string> more = {},
                  std::vector<std::string> environment = {}) {
    std::vector<std::string> args = {"fetch", "--model", std::string(name), "--version", "v1",
                                     "--source", std::string(source)};
    args.insert(args.end(), more.begin(), more.end());
    return Ctl(std::move(args), std::move(environment));
  }

  static std::string Trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

  // Every file of `files` is under `dir` with the origin's bytes.
  static void ExpectSameFiles(const fs::path& dir, const std::vector<OriginFile>& files) {
    for (const OriginFile& file : files) {
      ASSERT_TRUE(fs::exists(dir / file.path)) << dir / file.path;
      EXPECT_EQ(fs::file_size(dir / file.path), file.size) << file.path;
      absl::StatusOr<std::string> digest = Sha256OfFile(dir / file.path);
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256) << file.path;
    }
  }

  // Body bytes nginx sent for URIs starting with `prefix`.
  uint64_t OriginBytes(std::string_view prefix) const {
    uint64_t bytes = 0;
    for (const testing::AccessRecord& record : origin_->AccessLog()) {
      if (record.uri.rfind(prefix, 0) == 0) bytes += record.bytes;
    }
    return bytes;
  }

  const Origin* origin_model_ = nullptr;
  TempDir dir_;
  fs::path socket_;
  fs::path cache_root_;
  uint16_t metrics_port_ = 0;
  std::unique_ptr<NginxServer> origin_;
  std::unique_ptr<testing::AgentProcess> agent_;  // declared after dir_: stopped before the dir goes
  int ctl_runs_ = 0;
};

void ExpectFailure(const CtlResult& result, std::string_view code) {
  EXPECT_FALSE(result.exit.Success()) << result.err;
  EXPECT_THAT(result.err, HasSubstr(std::string(code)));
  EXPECT_EQ(result.out, "");
}

TEST_F(AgentE2eTest, FillsAMultiFileModelThenAnswersFromTheCache) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  const Origin& origin = *origin_model_;

  CtlResult first = Fetch("llm", Url("/big/"));
  ASSERT_TRUE(first.exit.Success()) << first.exit.ToString() << "\n" << first.err << AgentLog();
  fs::path ready = Trim(first.out);
  EXPECT_EQ(ready, cache_root_ / "models" / "llm" / "v1");
  ExpectSameFiles(ready, origin.big);
  // Plain progress lines (stderr is not a terminal), then the summary.
  EXPECT_THAT(first.err, HasSubstr("llm@v1: ready"));

  // Every byte of the model was served once (nginx logs a request after answering it).
  ASSERT_TRUE(PollUntil([&] { return OriginBytes("/big/weights/") + OriginBytes("/big/config") >= origin.big_bytes; },
                        std::chrono::seconds(10)));
  size_t requests_after_fill = origin_->AccessLog().size();

  CtlResult second = Fetch("llm", Url("/big/"));
  ASSERT_TRUE(second.exit.Success()) << second.err;
  EXPECT_EQ(Trim(second.out), ready.string());
  EXPECT_THAT(second.err, HasSubstr("already cached"));
  EXPECT_EQ(origin_->AccessLog().size(), requests_after_fill) << "a hit must not touch the origin";

  CtlResult list = Ctl({"list"});
  ASSERT_TRUE(list.exit.Success()) << list.err;
  EXPECT_THAT(list.out, HasSubstr("llm"));
  EXPECT_THAT(list.out, HasSubstr(Url("/big/")));
  CtlResult json = Ctl({"list", "--json"});
  EXPECT_THAT(json.out, HasSubstr("\"sizeBytes\": \"" + std::to_string(origin.big_bytes) + "\""));
  CtlResult stat = Ctl({"stat", "--model", "llm", "--version", "v1"});
  EXPECT_TRUE(stat.exit.Success()) << stat.err;
  EXPECT_THAT(stat.out, HasSubstr(ready.string()));
  ExpectFailure(Ctl({"stat", "--model", "absent", "--version", "v1"}), "NOT_FOUND");

  std::string base = "http://127.0.0.1:" + std::to_string(metrics_port_);
  testing::HttpResponse metrics = testing::HttpGet(base + "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("modelcache_ensure_requests_total{result=\"hit\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("modelcache_ensure_requests_total{result=\"miss\"} 1"));
  // The cache gauges are refreshed in the background after a fill publishes.
  EXPECT_TRUE(PollUntil([&] {
    return testing::HttpGet(base + "/metrics").body.find("modelcache_cache_models 1") != std::string::npos;
  }, std::chrono::seconds(10)));
  EXPECT_EQ(testing::HttpGet(base + "/readyz").status, 200);
}

TEST_F(AgentE2eTest, RejectsBadNamesAndSourcesWithTheirCodes) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ExpectFailure(Fetch("../x", Url("/small/")), "INVALID_ARGUMENT");
  ExpectFailure(Fetch("", Url("/small/")), "INVALID_ARGUMENT");
  ExpectFailure(Fetch(std::string(129, 'a'), Url("/small/")), "INVALID_ARGUMENT");
  ExpectFailure(Fetch("ok-name", "ftp://example.com/model/"), "INVALID_ARGUMENT");
  ExpectFailure(Fetch("missing", Url("/no-such-model/")), "NOT_FOUND");
  ExpectFailure(Fetch("secret", Url("/forbidden/big/")), "PERMISSION_DENIED");
  CtlResult usage = Ctl({"fetch", "--model", "x"});
  EXPECT_EQ(usage.exit.code, 2) << usage.err;
  // The agent still serves after all of these.
  CtlResult good = Fetch("small", Url("/small/"));
  ASSERT_TRUE(good.exit.Success()) << good.err << AgentLog();
  ExpectSameFiles(Trim(good.out), origin_model_->small);
}

TEST_F(AgentE2eTest, ADigestMismatchIsDataLossAndNothingIsPublished) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  CtlResult result = Fetch("corrupt", Url("/corrupt/"));
  ExpectFailure(result, "DATA_LOSS");
  EXPECT_EQ(result.exit.code, 4);
  CtlResult list = Ctl({"list"});
  ASSERT_TRUE(list.exit.Success()) << list.err;
  EXPECT_THAT(list.out, Not(HasSubstr("corrupt")));
  EXPECT_FALSE(fs::exists(cache_root_ / "models" / "corrupt" / "v1"));
}

TEST_F(AgentE2eTest, ConcurrentFetchesShareOneFill) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  std::vector<std::unique_ptr<Subprocess>> clients;
  std::vector<SubprocessOptions> options;
  for (int i = 0; i < 3; ++i) {
    options.push_back(CtlOptions({"fetch", "--model", "shared", "--version", "v1", "--source",
                                  Url("/slow/big/")},
                                 {}, "concurrent-" + std::to_string(i)));
    absl::StatusOr<std::unique_ptr<Subprocess>> client = Subprocess::Start(options.back());
    ASSERT_TRUE(client.ok()) << client.status();
    clients.push_back(*std::move(client));
  }
  std::set<std::string> paths;
  for (size_t i = 0; i < clients.size(); ++i) {
    absl::StatusOr<testing::ExitStatus> exit = clients[i]->WaitExit(kFetchTimeout);
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_TRUE(exit->Success()) << testing::ReadTestFile(options[i].stderr_path);
    paths.insert(Trim(testing::ReadTestFile(options[i].stdout_path)));
  }
  ASSERT_EQ(paths.size(), 1u);
  ExpectSameFiles(*paths.begin(), origin_model_->big);

  ASSERT_TRUE(PollUntil([&] { return OriginBytes("/slow/big/weights/") + OriginBytes("/slow/big/config") >=
                                     origin_model_->big_bytes; },
                        std::chrono::seconds(10)));
  std::multiset<std::pair<std::string, std::string>> ranges;
  for (const testing::AccessRecord& record : origin_->AccessLog()) {
    if (record.uri.find("/weights/") != std::string::npos) ranges.insert({record.uri, record.range});
  }
  for (const auto& range : ranges) {
    EXPECT_EQ(ranges.count(range), 1u) << range.first << " " << range.second << " served twice";
  }
  EXPECT_EQ(OriginBytes("/slow/big/weights/") + OriginBytes("/slow/big/config"), origin_model_->big_bytes);
}

TEST_F(AgentE2eTest, AFillInterruptedByKillResumesAfterRestart) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  std::string source = Url("/slow/big/");
  SubprocessOptions first_options =
      CtlOptions({"fetch", "--model", "resumed", "--version", "v1", "--source", source}, {}, "killed");
  absl::StatusOr<std::unique_ptr<Subprocess>> first = Subprocess::Start(first_options);
  ASSERT_TRUE(first.ok()) << first.status();

  // Wait until the journal says a good part is written, then kill -9 mid-fill.
  fs::path journal = cache_root_ / "staging" / "resumed@v1" / "journal.json";
  auto committed = [&] {
    absl::StatusOr<v1::FillJournal> read = ReadJournal(journal);
    uint64_t bytes = 0;
    if (read.ok()) {
      for (const auto& file : read->files()) bytes += file.committed_bytes();
    }
    return bytes;
  };
  ASSERT_TRUE(PollUntil([&] { return committed() >= (48u << 20); }, std::chrono::seconds(60)))
      << "journal never showed progress:\n" << AgentLog();
  ASSERT_TRUE(agent_->Kill(SIGKILL).ok());
  ASSERT_TRUE(agent_->WaitExit(std::chrono::seconds(10)).ok());
  ASSERT_FALSE(fs::exists(cache_root_ / "models" / "resumed" / "v1")) << "finished before the kill";
  absl::StatusOr<testing::ExitStatus> first_exit = (*first)->WaitExit(std::chrono::seconds(30));
  ASSERT_TRUE(first_exit.ok());
  EXPECT_FALSE(first_exit->Success());
  uint64_t before_restart = OriginBytes("/slow/big/");

  absl::Status restarted = agent_->Restart();  // same config, cache folder and socket
  ASSERT_TRUE(restarted.ok()) << restarted;
  CtlResult second = Fetch("resumed", source);
  ASSERT_TRUE(second.exit.Success()) << second.err << AgentLog();
  ExpectSameFiles(Trim(second.out), origin_model_->big);
  ASSERT_TRUE(PollUntil([&] { return OriginBytes("/slow/big/") > before_restart; }, std::chrono::seconds(10)));
  uint64_t second_fill = OriginBytes("/slow/big/") - before_restart;
  EXPECT_LT(second_fill, origin_model_->big_bytes)
      << "the second fill should reuse what the first one wrote";
}

// Restores the mount table even when the test fails.
class TmpfsMount {
 public:
  explicit TmpfsMount(const fs::path& where, std::string_view size) : where_(where) {
    fs::create_directories(where);
    std::string options = "size=" + std::string(size);
    mounted_ = mount("tmpfs", where.c_str(), "tmpfs", 0, options.c_str()) == 0;
    error_ = mounted_ ? 0 : errno;
  }
  ~TmpfsMount() {
    if (mounted_) umount2(where_.c_str(), MNT_DETACH);
  }
  bool Mounted() const { return mounted_; }
  std::string Error() const { return std::strerror(error_); }

 private:
  fs::path where_;
  bool mounted_ = false;
  int error_ = 0;
};

TEST_F(AgentE2eTest, AModelLargerThanTheVolumeIsResourceExhausted) {
  TmpfsMount tmpfs(dir_.Path() / "small-volume", "64m");
  if (!tmpfs.Mounted()) {
    GTEST_SKIP() << "cannot mount a 64 MiB tmpfs here (" << tmpfs.Error()
                 << "; needs root outside a restricted container): no full volume to test with";
  }
  cache_root_ = dir_.Path() / "small-volume" / "cache";
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  // A tmpfs is refused by the storage check; this test wants a small volume, not that check.
  ASSERT_NO_FATAL_FAILURE(
      StartAgent("modelsCacheStorage: {enabled: true, bypassStorageCheck: true}\n"));
  CtlResult small = Fetch("small", Url("/small/"));
  ASSERT_TRUE(small.exit.Success()) << small.err << AgentLog();

  CtlResult big = Fetch("big", Url("/big/"));
  ExpectFailure(big, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(big.exit.code, 4);

  CtlResult list = Ctl({"list"});
  EXPECT_THAT(list.out, HasSubstr("small"));
  EXPECT_THAT(list.out, Not(HasSubstr("big")));
  ExpectSameFiles(Trim(small.out), origin_model_->small);
  agent_.reset();  // before the volume goes
}

TEST_F(AgentE2eTest, DisabledCacheFetchesLocallyWithoutAnAgent) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  fs::path dest = dir_.Path() / "dest";
  CtlResult result = Fetch("local", Url("/small/"), {"--dest", dest.string()}, {"MODELCACHE_DISABLE=true"});
  ASSERT_TRUE(result.exit.Success()) << result.err;
  EXPECT_EQ(Trim(result.out), (dest / "models" / "local" / "v1").string());
  ExpectSameFiles(dest / "models" / "local" / "v1", origin_model_->small);

  // Same with the other switch.
  CtlResult aioli = Fetch("local2", Url("/small/"), {"--dest", dest.string()},
                          {"AIOLI_DISABLE_MODEL_CACHE=true"});
  ASSERT_TRUE(aioli.exit.Success()) << aioli.err;
  // Without --dest there is nowhere to put it.
  CtlResult no_dest = Fetch("local3", Url("/small/"), {}, {"MODELCACHE_DISABLE=true"});
  EXPECT_EQ(no_dest.exit.code, 2) << no_dest.err;
}

TEST_F(AgentE2eTest, UnreachableAgentFailsOrFallsBack) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  CtlResult unreachable = Fetch("m", Url("/small/"));
  EXPECT_EQ(unreachable.exit.code, 3) << unreachable.err;
  EXPECT_THAT(unreachable.err, HasSubstr("unreachable"));

  fs::path dest = dir_.Path() / "dest";
  CtlResult fallback = Fetch("m", Url("/small/"), {"--fallback", "--dest", dest.string()});
  ASSERT_TRUE(fallback.exit.Success()) << fallback.err;
  ExpectSameFiles(dest / "models" / "m" / "v1", origin_model_->small);
}

TEST_F(AgentE2eTest, AnAgentWithCachingDisabledRefusesAndTheClientFallsBack) {
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent("modelsCacheStorage: {enabled: false}\n"));
  ExpectFailure(Fetch("m", Url("/small/")), "FAILED_PRECONDITION");
  const std::string metrics_url = "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics";
  EXPECT_THAT(testing::HttpGet(metrics_url).body,
              HasSubstr("modelcache_ensure_fallbacks_total{reason=\"node_disabled\"} 1"));
  fs::path dest = dir_.Path() / "dest";
  CtlResult fallback = Fetch("m", Url("/small/"), {"--fallback", "--dest", dest.string()});
  ASSERT_TRUE(fallback.exit.Success()) << fallback.err;
  ExpectSameFiles(dest / "models" / "m" / "v1", origin_model_->small);
  // The agent filled nothing.
  EXPECT_THAT(testing::HttpGet(metrics_url).body,
              HasSubstr("modelcache_fill_duration_seconds_count{scheme=\"http\"} 0"));
}

TEST_F(AgentE2eTest, FillsAModelFromS3UnderAPrefix) {
  absl::StatusOr<std::unique_ptr<testing::S3rverServer>> s3 = testing::S3rverServer::Start("models");
  ASSERT_TRUE(s3.ok()) << s3.status();
  std::map<std::string, std::string> objects = {
      {"config.json", "{\"hidden\": 64}"},
      {"weights/part-1.bin", std::string(3u << 20, 'a')},
      {"weights/part-2.bin", std::string(1u << 20, 'b') + "tail"}};
  for (const auto& [path, body] : objects) {
    ASSERT_TRUE((*s3)->PutObject("models", "team/m1/v1/" + path, body).ok());
  }
  // Outside the prefix: must not be part of the model.
  ASSERT_TRUE((*s3)->PutObject("models", "team/m1/v2/other.bin", "other").ok());

  ASSERT_NO_FATAL_FAILURE(StartAgent(
      "s3: {endpoint: \"" + (*s3)->Endpoint() + "\", pathStyle: true}\n",
      {"AWS_ACCESS_KEY_ID=" + std::string(testing::S3rverServer::kAccessKeyId),
       "AWS_SECRET_ACCESS_KEY=" + std::string(testing::S3rverServer::kSecretAccessKey)}));
  CtlResult result = Fetch("s3model", "s3://models/team/m1/v1/");
  ASSERT_TRUE(result.exit.Success()) << result.err << AgentLog();
  fs::path ready = Trim(result.out);
  for (const auto& [path, body] : objects) {
    EXPECT_EQ(testing::ReadTestFile(ready / path), body) << path;
  }
  EXPECT_FALSE(fs::exists(ready / "other.bin"));
  // Counted under the s3 scheme: every byte of the model, fetched once.
  uint64_t model_bytes = 0;
  for (const auto& [path, body] : objects) model_bytes += body.size();
  testing::HttpResponse metrics =
      testing::HttpGet("http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("modelcache_fill_bytes_total{scheme=\"s3\"} " +
                                      std::to_string(model_bytes)));
  EXPECT_THAT(metrics.body, HasSubstr("modelcache_fills_total{result=\"ok\",scheme=\"s3\"} 1"));
}

}  // namespace
}  // namespace modelcache
