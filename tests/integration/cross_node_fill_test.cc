// Cross-node single flight (issue #4): real agents sharing one cache folder (as pods on several
// nodes share an NFS volume), a real coordinator and a real nginx origin on 127.0.0.1. The
// origin's access log shows how often each byte was downloaded.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "agent/store/fill_lock.h"
#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "agent/store/volume_id.h"
#include "common/sha256.h"
#include "modelcache/v1/agent.grpc.pb.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/source_access.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/registry_sources.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::PollUntil;
using testing::AgentProcess;

constexpr auto kDeadline = 30s;
constexpr auto kFillDeadline = 180s;
constexpr uint64_t kMiB = 1ull << 20;

// One Ensure call through an agent's socket, on a thread of its own.
class EnsureCall {
 public:
  EnsureCall(const AgentProcess& agent, const std::string& source) {
    v1::EnsureRequest request;
    request.set_name("m");
    request.set_version("v1");
    request.set_source(source);
    thread_ = std::thread([this, socket = agent.Socket(), request] {
      auto channel = grpc::CreateChannel("unix:" + socket.string(),
                                         grpc::InsecureChannelCredentials());
      auto stub = v1::Agent::NewStub(channel);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + kFillDeadline);
      auto reader = stub->Ensure(&context, request);
      v1::EnsureProgress progress;
      while (reader->Read(&progress)) {
        std::lock_guard lock(mutex_);
        progress_.push_back(progress);
      }
      grpc::Status status = reader->Finish();
      std::lock_guard lock(mutex_);
      status_ = status;
    });
  }
  ~EnsureCall() { Wait(); }

  void Wait() {
    if (thread_.joinable()) thread_.join();
  }
  bool Ok() {
    Wait();
    return status_.ok() && !progress_.empty() &&
           progress_.back().state() == v1::EnsureProgress::READY;
  }
  std::string Error() {
    Wait();
    return std::to_string(status_.error_code()) + " " + status_.error_message();
  }
  v1::EnsureProgress Last() {
    Wait();
    return progress_.empty() ? v1::EnsureProgress() : progress_.back();
  }
  // A FILLING update of a fill of `total` bytes that has not ended (another agent's, for a
  // waiter: its progress comes from the filler's coordinator lease).
  bool SawFillingOf(uint64_t total) {
    std::lock_guard lock(mutex_);
    for (const auto& update : progress_) {
      if (update.state() == v1::EnsureProgress::FILLING && update.bytes_total() == total &&
          update.bytes_done() < total) {
        return true;
      }
    }
    return false;
  }
  // A FILLING update with bytes of another agent's fill (neither nothing nor everything).
  bool SawPartialProgress(uint64_t total) {
    std::lock_guard lock(mutex_);
    for (const auto& update : progress_) {
      if (update.state() == v1::EnsureProgress::FILLING && update.bytes_total() == total &&
          update.bytes_done() > 0 && update.bytes_done() < total) {
        return true;
      }
    }
    return false;
  }

 private:
  std::thread thread_;
  std::mutex mutex_;
  std::vector<v1::EnsureProgress> progress_;
  grpc::Status status_;
};

// Polls a published-models folder the whole time and remembers any file it saw with a size
// other than the origin's: a partial file must never be visible under models/.
class PartialFileWatcher {
 public:
  PartialFileWatcher(fs::path model_dir, std::map<std::string, uint64_t> sizes)
      : model_dir_(std::move(model_dir)), sizes_(std::move(sizes)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        Scan();
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  ~PartialFileWatcher() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> Problems() {
    Stop();
    return problems_;
  }
  uint64_t Scans() const { return scans_; }
  bool SawModel() const { return saw_model_; }

 private:
  void Scan() {
    std::error_code error;
    for (auto it = fs::recursive_directory_iterator(model_dir_, error);
         !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
      if (!it->is_regular_file(error)) continue;
      std::string relative = it->path().lexically_relative(model_dir_).generic_string();
      auto want = sizes_.find(relative);
      if (want == sizes_.end()) continue;  // manifest, access file
      saw_model_ = true;
      uint64_t size = fs::file_size(it->path(), error);
      if (!error && size != want->second && problems_.size() < 10) {
        problems_.push_back(relative + ": " + std::to_string(size) + " of " +
                            std::to_string(want->second) + " bytes");
      }
    }
    ++scans_;
  }

  const fs::path model_dir_;
  const std::map<std::string, uint64_t> sizes_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> scans_{0};
  std::atomic<bool> saw_model_{false};
  std::vector<std::string> problems_;
};

class CrossNodeFillTest : public ::testing::Test {
 protected:
  // The >= 512 MiB model is written once for the suite (about a second per 256 MiB).
  static void SetUpTestSuite() {
    origin_dir_ = new testing::TempDir();
    fs::path root = origin_dir_->Path();
    files_ = new std::vector<v1::ManifestFile>(testing::WriteRandomModel(
        root / "m", {{"config.json", 3000}, {"weights/a.bin", 320 * kMiB + 12345},
                     {"weights/b.bin", 192 * kMiB}}));
    testing::WriteTestFile(root / "m" / "modelcache.json", testing::HttpListingJson(*files_));
    // The same model under /slow/, where nginx sends each response at a limited rate.
    fs::create_directories(root / "slow");
    fs::create_directory_symlink(root / "m", root / "slow" / "m");
  }
  static void TearDownTestSuite() {
    delete files_;
    delete origin_dir_;
  }

  void SetUp() override {
    for (const v1::ManifestFile& file : *files_) {
      model_bytes_ += file.size();
      sizes_[file.path()] = file.size();
    }
    ASSERT_GE(model_bytes_, 512 * kMiB);
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin = testing::NginxServer::Start(
        {.root = origin_dir_->Path().string(),
         .locations = {{.prefix = "/slow/", .extra_directives = "limit_rate 6m;"},
                       {.prefix = "/crawl/", .extra_directives = "limit_rate 256k;"}}});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);

    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start({.directory = dir_.Path()});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);

    for (int i = 0; i < 4; ++i) {
      ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[i], "node-" + std::to_string(i), Shared()));
    }
    ASSERT_NO_FATAL_FAILURE(StartAgent(agents_[4], "node-own", dir_.Path() / "own-cache"));
  }

  fs::path Shared() const { return dir_.Path() / "shared-cache"; }
  fs::path ModelDir() const { return Shared() / "models" / "m" / "v1"; }

  void StartAgent(std::unique_ptr<AgentProcess>& agent, const std::string& node,
                  const fs::path& cache_root) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> started = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = node,
         .cache_root = cache_root,
         .socket = dir_.Path() / ("run-" + node) / "agent.sock",
         .coordinator = coordinator_->Address(),
         .network_allow = testing::LoopbackOrigins(),  // the origin listens on 127.0.0.1
         .extra_yaml = "fillLease: {ttl: 2s, pollInterval: 1s}\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    agent = *std::move(started);
  }

  std::string Logs() {
    std::string all;
    for (const std::unique_ptr<AgentProcess>& agent : agents_) {
      if (agent) all += "---- " + agent->NodeName() + "\n" + agent->Log();
    }
    return all;
  }

  // Body bytes nginx sent for the model's files (not the listing).
  uint64_t ServedModelBytes() const {
    uint64_t bytes = 0;
    for (const testing::AccessRecord& record : origin_->AccessLog()) {
      if (record.uri.find("/m/weights/") != std::string::npos ||
          record.uri.find("/m/config.json") != std::string::npos) {
        bytes += record.bytes;
      }
    }
    return bytes;
  }
  // Polls until nginx has logged `at_least` model bytes (it logs after answering).
  uint64_t SettledServedBytes(uint64_t at_least) const {
    uint64_t served = 0;
    PollUntil([&] { return (served = ServedModelBytes()) >= at_least; }, 5s, 20ms);
    return served;
  }

  void ExpectModelAt(const fs::path& dir) {
    for (const v1::ManifestFile& file : *files_) {
      absl::StatusOr<std::string> digest = Sha256OfFile(dir / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << dir / file.path();
    }
  }

  std::string Url(const std::string& prefix = "") const {
    return origin_->BaseUrl() + prefix + "/m/";
  }

  // Registers `source` as m@v1's source (agents with a coordinator fill only from it) and
  // waits until every agent holds the registry that names it.
  void RegisterSource(const std::string& source) {
    absl::Status registered =
        testing::RegisterSource(coordinator_->Address(), "", "m", "v1", source);
    ASSERT_TRUE(registered.ok()) << registered;
    for (const std::unique_ptr<AgentProcess>& agent : agents_) {
      ASSERT_TRUE(testing::WaitForRegisteredSources(agent->LogPath(), 1, kDeadline)) << agent->Log();
    }
  }

  static inline testing::TempDir* origin_dir_ = nullptr;
  static inline std::vector<v1::ManifestFile>* files_ = nullptr;
  testing::TempDir dir_;
  uint64_t model_bytes_ = 0;
  std::map<std::string, uint64_t> sizes_;
  std::unique_ptr<testing::NginxServer> origin_;
  // Declared after dir_, so stopped (by PID) before their folders go.
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agents_[5];  // 0..3 share one folder, 4 has its own
};

// The agent whose node the lock file names, once there is one; -1 after the deadline.
int FillerOf(const fs::path& cache_root, const std::unique_ptr<AgentProcess>* agents, int count) {
  SystemClock clock;
  FillLocks locks(CacheLayout(cache_root), "test", clock, 2000ms);
  int filler = -1;
  PollUntil(
      [&] {
        absl::StatusOr<FillLockHolder> holder = locks.ReadHolder("m", "v1");
        if (!holder.ok()) return false;
        for (int i = 0; i < count; ++i) {
          if (agents[i]->NodeName() == holder->node) filler = i;
        }
        return filler >= 0;
      },
      kDeadline);
  return filler;
}

// Bytes the fill journal says are safely in staging.
uint64_t CommittedBytes(const fs::path& cache_root) {
  absl::StatusOr<v1::FillJournal> journal =
      ReadJournal(CacheLayout(cache_root).JournalPath("m", "v1"));
  if (!journal.ok()) return 0;
  uint64_t committed = 0;
  for (const auto& file : journal->files()) committed += file.committed_bytes();
  return committed;
}

TEST_F(CrossNodeFillTest, FourAgentsOnOneVolumeDownloadTheModelOnce) {
  ASSERT_NO_FATAL_FAILURE(RegisterSource(Url()));
  std::vector<std::unique_ptr<EnsureCall>> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(std::make_unique<EnsureCall>(*agents_[i], Url()));
  int fills = 0;
  for (auto& call : calls) {
    ASSERT_TRUE(call->Ok()) << call->Error() << Logs();
    EXPECT_EQ(call->Last().path(), ModelDir().string());
    if (!call->Last().hit()) ++fills;
  }
  EXPECT_EQ(fills, 1) << "exactly one agent fills, the others answer READY as a hit";
  ExpectModelAt(ModelDir());
  // Each byte once, with room for a few retried 8 MiB chunks.
  uint64_t served = SettledServedBytes(model_bytes_);
  EXPECT_GE(served, model_bytes_);
  EXPECT_LE(served, model_bytes_ + model_bytes_ / 20) << Logs();

  // The agent on its own folder is another volume: it fills its own copy.
  absl::StatusOr<VolumeIdRecord> shared = ReadVolumeId(CacheLayout(Shared()));
  absl::StatusOr<VolumeIdRecord> own = ReadVolumeId(CacheLayout(agents_[4]->CacheRoot()));
  ASSERT_TRUE(shared.ok() && own.ok());
  EXPECT_NE(shared->id, own->id);
  EnsureCall separate(*agents_[4], Url());
  ASSERT_TRUE(separate.Ok()) << separate.Error() << agents_[4]->Log();
  EXPECT_FALSE(separate.Last().hit());
  ExpectModelAt(agents_[4]->CacheRoot() / "models" / "m" / "v1");
  EXPECT_GE(SettledServedBytes(2 * model_bytes_), 2 * model_bytes_);
}

TEST_F(CrossNodeFillTest, KilledFillerIsTakenOverAndResumedFromStaging) {
  ASSERT_NO_FATAL_FAILURE(RegisterSource(Url("/slow")));
  PartialFileWatcher watcher(ModelDir(), sizes_);
  std::vector<std::unique_ptr<EnsureCall>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::make_unique<EnsureCall>(*agents_[i], Url("/slow")));
  }
  // Who fills: the lock file names the node.
  int filler = FillerOf(Shared(), agents_, 4);
  ASSERT_GE(filler, 0) << Logs();
  // Kill it once its journal holds a good part of the model, well before the end.
  uint64_t committed = 0;
  ASSERT_TRUE(PollUntil([&] { return (committed = CommittedBytes(Shared())) >= model_bytes_ / 5; },
                        kDeadline, 20ms))
      << Logs();
  ASSERT_LT(committed, model_bytes_ * 3 / 4) << "the origin was too fast to kill mid-fill";
  ASSERT_TRUE(agents_[filler]->Kill(SIGKILL).ok());

  // Another agent takes over after the lease ttl and resumes. Bytes served from then on are
  // its own: the killed filler's requests were logged by nginx when their connections died.
  int taker = -1;
  ASSERT_TRUE(PollUntil(
      [&] {
        for (int i = 0; i < 4; ++i) {
          if (i != filler && agents_[i]->Log().find("resuming") != std::string::npos) taker = i;
        }
        return taker >= 0;
      },
      kDeadline, 10ms))
      << Logs();
  uint64_t served_before_takeover = ServedModelBytes();

  for (int i = 0; i < 4; ++i) {
    if (i == filler) continue;
    ASSERT_TRUE(calls[i]->Ok()) << calls[i]->Error() << Logs();
    EXPECT_EQ(calls[i]->Last().path(), ModelDir().string());
    EXPECT_EQ(calls[i]->Last().hit(), i != taker) << agents_[i]->NodeName();
    // Every survivor heard of a fill in progress before READY (its own or the filler's).
    EXPECT_TRUE(calls[i]->SawPartialProgress(model_bytes_)) << agents_[i]->NodeName();
  }
  ExpectModelAt(ModelDir());
  uint64_t served = SettledServedBytes(model_bytes_);
  uint64_t after_takeover = served - served_before_takeover;
  EXPECT_LT(after_takeover, model_bytes_ - committed / 2) << Logs();
  EXPECT_GT(after_takeover, 0u);

  std::vector<std::string> problems = watcher.Problems();
  EXPECT_TRUE(problems.empty()) << "partial files under models/: " << problems.front();
  EXPECT_TRUE(watcher.SawModel());
  EXPECT_GT(watcher.Scans(), 100u);
}

TEST_F(CrossNodeFillTest, LockFilesKeepOneDownloadWithoutTheCoordinator) {
  // Registered while the coordinator runs; the agents keep the registry while it is away.
  ASSERT_NO_FATAL_FAILURE(RegisterSource(Url()));
  testing::ExitStatus stopped = coordinator_->Stop();
  ASSERT_FALSE(coordinator_->Running()) << stopped.ToString();
  std::vector<std::unique_ptr<EnsureCall>> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(std::make_unique<EnsureCall>(*agents_[i], Url()));
  int fills = 0;
  for (auto& call : calls) {
    ASSERT_TRUE(call->Ok()) << call->Error() << Logs();
    EXPECT_EQ(call->Last().path(), ModelDir().string());
    if (!call->Last().hit()) ++fills;
  }
  EXPECT_EQ(fills, 1) << Logs();
  ExpectModelAt(ModelDir());
  uint64_t served = SettledServedBytes(model_bytes_);
  EXPECT_GE(served, model_bytes_);
  EXPECT_LE(served, model_bytes_ + model_bytes_ / 20) << Logs();
  EXPECT_NE(Logs().find("no coordinator lease"), std::string::npos) << Logs();
  // The lock is gone once the fill is over.
  EXPECT_FALSE(fs::exists(CacheLayout(Shared()).LocksDir() / "m@v1.lock"));
}

}  // namespace
}  // namespace modelcache

namespace modelcache {
namespace {

// The coordinator keeps fill leases in memory: when it restarts mid-fill, the filler (which
// still holds the lock file) takes a fresh lease and goes on; nobody else starts over.
TEST_F(CrossNodeFillTest, CoordinatorRestartMidFillKeepsTheFiller) {
  ASSERT_NO_FATAL_FAILURE(RegisterSource(Url("/slow")));
  std::vector<std::unique_ptr<EnsureCall>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::make_unique<EnsureCall>(*agents_[i], Url("/slow")));
  }
  int filler = FillerOf(Shared(), agents_, 4);
  ASSERT_GE(filler, 0) << Logs();
  ASSERT_TRUE(PollUntil([&] { return CommittedBytes(Shared()) >= model_bytes_ / 10; }, kDeadline,
                        20ms))
      << Logs();
  testing::ExitStatus stopped = coordinator_->Stop();
  ASSERT_FALSE(coordinator_->Running()) << stopped.ToString();
  absl::Status restarted = coordinator_->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_LT(CommittedBytes(Shared()), model_bytes_ * 9 / 10) << "the fill ended too early";

  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(calls[i]->Ok()) << calls[i]->Error() << Logs();
    EXPECT_EQ(calls[i]->Last().path(), ModelDir().string());
    if (i == filler) {
      EXPECT_FALSE(calls[i]->Last().hit()) << agents_[i]->NodeName() << Logs();
    } else if (!calls[i]->Last().hit()) {
      // A waiter that took the fresh coordinator lease just as the filler published finds
      // the model there when it lists, and fetches nothing (served bytes below say so).
      EXPECT_NE(agents_[i]->Log().find("fill not needed: published meanwhile"), std::string::npos)
          << agents_[i]->NodeName() << Logs();
    }
  }
  ExpectModelAt(ModelDir());
  EXPECT_EQ(Logs().find("resuming"), std::string::npos) << "nobody had to take the fill over";
  uint64_t served = SettledServedBytes(model_bytes_);
  EXPECT_LE(served, model_bytes_ + model_bytes_ / 20) << Logs();
}

// A fill that fails for good (here DATA_LOSS: the origin's file does not match its listing) is
// not retried by each waiting agent in turn: the filler publishes its error with the
// coordinator lease, and the agents that waited on it answer their clients with it.
TEST_F(CrossNodeFillTest, APermanentFailureIsSharedWithTheWaitersInsteadOfRefetched) {
  fs::path bad = origin_dir_->Path() / ("bad-" + std::to_string(coordinator_->Port()));
  // One file of one chunk, sent at 256 KB/s: about 12 s.
  constexpr uint64_t kFileBytes = 3 * kMiB;
  std::vector<v1::ManifestFile> files =
      testing::WriteRandomModel(bad, {{"weights/w.bin", kFileBytes}});
  files[0].set_sha256(std::string(64, '0'));  // the listing lies
  testing::WriteTestFile(bad / "modelcache.json", testing::HttpListingJson(files));
  const std::string prefix = "/crawl/" + bad.filename().string() + "/";
  fs::create_directories(origin_dir_->Path() / "crawl");
  fs::create_directory_symlink(bad, origin_dir_->Path() / "crawl" / bad.filename());
  const std::string source = origin_->BaseUrl() + prefix;
  ASSERT_NO_FATAL_FAILURE(RegisterSource(source));

  std::vector<std::unique_ptr<EnsureCall>> calls;
  calls.push_back(std::make_unique<EnsureCall>(*agents_[0], source));
  ASSERT_EQ(FillerOf(Shared(), agents_, 4), 0) << Logs();
  for (int i = 1; i < 4; ++i) calls.push_back(std::make_unique<EnsureCall>(*agents_[i], source));
  // Every other agent waits on agent 0's fill: it passes on the progress of the coordinator
  // lease to its client.
  ASSERT_TRUE(PollUntil(
      [&] {
        for (int i = 1; i < 4; ++i) {
          if (!calls[i]->SawFillingOf(kFileBytes)) return false;
        }
        return true;
      },
      kDeadline, 20ms))
      << Logs();
  ASSERT_EQ(agents_[0]->Log().find("sha256 mismatch"), std::string::npos)
      << "the fill ended before the waiters waited";

  for (int i = 0; i < 4; ++i) {
    calls[i]->Wait();
    EXPECT_EQ(calls[i]->Error().substr(0, 3), "15 ") << agents_[i]->NodeName() << ": "
                                                     << calls[i]->Error() << Logs();
    EXPECT_NE(calls[i]->Error().find("sha256 mismatch"), std::string::npos) << calls[i]->Error();
  }
  // One agent asked the origin: one listing, the file's bytes once.
  int listings = 0;
  uint64_t file_bytes = 0;
  PollUntil(
      [&] {
        listings = 0;
        file_bytes = 0;
        for (const testing::AccessRecord& record : origin_->AccessLog()) {
          if (record.uri.find(prefix + "modelcache.json") != std::string::npos) ++listings;
          if (record.uri.find(prefix + "weights/") != std::string::npos) {
            file_bytes += record.bytes;
          }
        }
        return file_bytes >= kFileBytes;
      },
      5s, 20ms);
  EXPECT_EQ(listings, 1) << Logs();
  EXPECT_EQ(file_bytes, kFileBytes) << Logs();
  EXPECT_FALSE(fs::exists(ModelDir()));

  // A new Ensure may try again (and meets the same error from the origin itself).
  EnsureCall again(*agents_[1], source);
  again.Wait();
  EXPECT_EQ(again.Error().substr(0, 3), "15 ") << again.Error();
  EXPECT_EQ(again.Error().find("which this agent waited for"), std::string::npos)
      << again.Error();
}

}  // namespace
}  // namespace modelcache
