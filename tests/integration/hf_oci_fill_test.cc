// hf:// and oci:// through the fill engine's shared guarantees (issue #16): the cross-node
// single flight (four agents on one cache folder and a real coordinator: the origin serves the
// model's bytes once) and resume after kill -9 (the restarted agent reads from the origin only
// what the journal does not already hold). Origins: the test Hugging Face Hub and Debian's
// docker-registry on 127.0.0.1, the latter behind an nginx proxy that slows responses down so
// that the kill lands mid-fill.
#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "common/concat.h"
#include "common/sha256.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/registry_sources.h"
#include "tests/testing/hf_hub_server.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/oci_registry.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::AgentProcess;
using testing::CtlResult;
using testing::PollUntil;

constexpr uint64_t kMiB = 1ull << 20;

std::string RandomBytes(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : out) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    c = static_cast<char>(state);
  }
  return out;
}

// The origin is started by each test (a registry or a hub); this fixture holds the agents, the
// coordinator and the modelcachectl runs they share.
class HfOciFillTest : public ::testing::Test {
 protected:
  fs::path Shared() const { return dir_.Path() / "shared-cache"; }

  void StartCoordinator() {
    absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> coordinator =
        testing::CoordinatorProcess::Start({.directory = dir_.Path()});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  void StartAgent(int i, const std::string& extra_yaml) {
    const std::string node = "node-" + std::to_string(i);
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent =
        AgentProcess::Start({.directory = dir_.Path(),
                             .node_name = node,
                             .cache_root = Shared(),
                             .socket = dir_.Path() / ("run-" + node) / "agent.sock",
                             .coordinator = coordinator_ ? coordinator_->Address() : "",
                             .network_allow = testing::LoopbackOrigins(),
                             .extra_yaml = extra_yaml});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agents_[i] = *std::move(agent);
  }

  std::unique_ptr<testing::Subprocess> StartFetch(int agent, const std::string& source) {
    testing::SubprocessOptions options;
    options.argv = {MODELCACHE_BINARY_DIR "/cli/modelcachectl", "fetch", "--model", "m", "--version", "v1",
                    "--source", source, "--timeout", "170s"};
    options.environment = {"MODELCACHE_SOCKET=" + agents_[agent]->Socket().string()};
    options.stdout_path = (dir_.Path() / ("fetch-" + std::to_string(agent) + ".out")).string();
    options.stderr_path = (dir_.Path() / ("fetch-" + std::to_string(agent) + ".err")).string();
    absl::StatusOr<std::unique_ptr<testing::Subprocess>> fetch = testing::Subprocess::Start(options);
    EXPECT_TRUE(fetch.ok()) << fetch.status();
    return fetch.ok() ? *std::move(fetch) : nullptr;
  }

  CtlResult Fetch(int agent, const std::string& source) {
    return testing::RunCtl({.directory = dir_.Path(), .socket = agents_[agent]->Socket(), .timeout = 170s},
                           {"fetch", "--model", "m", "--version", "v1", "--source", source, "--timeout", "170s"});
  }

  // Four agents on one folder fetch `source` at once; every fetch succeeds. With a
  // coordinator the source is registered first: agents fill only from a registered source.
  void FetchOnFourAgents(const std::string& source) {
    if (coordinator_) {
      absl::Status registered = testing::RegisterSource(coordinator_->Address(), "", "m", "v1", source);
      ASSERT_TRUE(registered.ok()) << registered;
      for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(testing::WaitForRegisteredSources(agents_[i]->LogPath(), 1, 60s)) << Logs();
      }
    }
    std::vector<std::unique_ptr<testing::Subprocess>> fetches;
    for (int i = 0; i < 4; ++i) {
      fetches.push_back(StartFetch(i, source));
      ASSERT_NE(fetches.back(), nullptr);
    }
    for (int i = 0; i < 4; ++i) {
      absl::StatusOr<testing::ExitStatus> exit = fetches[i]->WaitExit(180s);
      ASSERT_TRUE(exit.ok()) << exit.status();
      EXPECT_TRUE(exit->Success()) << "agent " << i << ": " << exit->ToString() << "\n"
                                   << testing::ReadTestFile(dir_.Path() / ("fetch-" + std::to_string(i) + ".err"))
                                   << Logs();
    }
  }

  // Kills agent 0 once the fill journal says at least `at_least` bytes are in staging, checks
  // that the kill landed mid-fill, keeps in committed_at_kill_ what the journal then holds and
  // restarts the agent.
  void KillMidFill(const std::string& source, uint64_t at_least) {
    std::unique_ptr<testing::Subprocess> first = StartFetch(0, source);
    ASSERT_NE(first, nullptr);
    const fs::path journal = CacheLayout(Shared()).JournalPath("m", "v1");
    auto committed = [&] {
      absl::StatusOr<v1::FillJournal> read = ReadJournal(journal);
      uint64_t bytes = 0;
      if (read.ok()) {
        for (const auto& file : read->files()) bytes += file.committed_bytes();
      }
      return bytes;
    };
    ASSERT_TRUE(PollUntil([&] { return committed() >= at_least; }, 60s, 5ms))
        << "the journal never showed progress:\n" << Logs();
    ASSERT_TRUE(agents_[0]->Kill(SIGKILL).ok());
    ASSERT_TRUE(agents_[0]->WaitExit(10s).ok());
    ASSERT_FALSE(fs::exists(Shared() / "models" / "m" / "v1")) << "the fill ended before the kill";
    absl::StatusOr<testing::ExitStatus> first_exit = first->WaitExit(30s);
    ASSERT_TRUE(first_exit.ok()) << first_exit.status();
    EXPECT_FALSE(first_exit->Success());
    committed_at_kill_ = committed();
    ASSERT_TRUE(agents_[0]->Restart().ok());
  }

  std::string Logs() const {
    std::string all;
    for (const std::unique_ptr<AgentProcess>& agent : agents_) {
      if (agent) all += "---- " + agent->NodeName() + "\n" + agent->Log();
    }
    return all;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
  std::unique_ptr<AgentProcess> agents_[4];
  uint64_t committed_at_kill_ = 0;
};

// --- oci:// ---------------------------------------------------------------------------------

class OciFillTest : public HfOciFillTest {
 protected:
  void StartRegistry() {
    absl::StatusOr<std::unique_ptr<testing::OciRegistry>> registry = testing::OciRegistry::Start();
    if (absl::IsFailedPrecondition(registry.status())) GTEST_SKIP() << registry.status();
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    // The registry has no rate limit of its own: nginx in front of it paces each response
    // (after the first second's worth of bytes, which nginx sends at once).
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> proxy = testing::NginxServer::Start(
        {.root = dir_.Path().string(),
         .locations = {{.prefix = "/v2/",
                        .extra_directives = Concat("proxy_pass http://", registry_->Host(),
                                                   "; proxy_set_header Host $http_host; limit_rate 256k;")}}});
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
  }

  // The artifact, read through the proxy.
  std::string Source() const { return Concat("oci://127.0.0.1:", proxy_->Port(), "/models/m:v1"); }

  // Body bytes of blob GETs the proxy sent: what the origin served the agents.
  uint64_t BlobBytes() const {
    uint64_t bytes = 0;
    for (const testing::AccessRecord& record : proxy_->AccessLog()) {
      if (record.uri.find("/blobs/sha256:") != std::string::npos) bytes += record.bytes;
    }
    return bytes;
  }

  void PushModel() {
    files_ = {{"model.safetensors", RandomBytes(6 * kMiB + 4321, 11)},
              {"tokenizer.json", RandomBytes(300'000, 12)},
              {"config.json", R"({"architectures": ["Test"]})"}};
    for (const auto& [path, bytes] : files_) model_bytes_ += bytes.size();
    absl::StatusOr<std::string> digest = testing::PushModelPack(*registry_, "models/m", "v1", files_);
    ASSERT_TRUE(digest.ok()) << digest.status() << registry_->Log();
  }

  void ExpectModel() {
    const fs::path model = Shared() / "models" / "m" / "v1";
    for (const auto& [path, bytes] : files_) {
      EXPECT_EQ(testing::ReadTestFile(model / path), bytes) << path;
    }
    EXPECT_EQ(testing::FindPartialModel(Shared()), "");
  }

  std::unique_ptr<testing::OciRegistry> registry_;
  std::unique_ptr<testing::NginxServer> proxy_;
  std::vector<std::pair<std::string, std::string>> files_;
  uint64_t model_bytes_ = 0;
};

TEST_F(OciFillTest, FourAgentsOnOneVolumeReadEachBlobOnce) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(PushModel());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  for (int i = 0; i < 4; ++i) {
    ASSERT_NO_FATAL_FAILURE(StartAgent(i, "fill: {chunkSize: 256Ki}\nfillLease: {ttl: 2s, pollInterval: 1s}\n"));
  }
  ASSERT_NO_FATAL_FAILURE(FetchOnFourAgents(Source()));
  ExpectModel();
  uint64_t served = 0;
  PollUntil([&] { return (served = BlobBytes()) >= model_bytes_; }, 5s, 20ms);  // logged after answering
  EXPECT_GE(served, model_bytes_);
  EXPECT_LE(served, model_bytes_ + model_bytes_ / 20) << "each blob byte once, a few retried chunks aside\n"
                                                      << Logs();
}

TEST_F(OciFillTest, AFillKilledMidwayResumesFromStaging) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(PushModel());
  // A short lease: the restarted agent takes over the killed one's lock file soon.
  ASSERT_NO_FATAL_FAILURE(
      StartAgent(0, "fill: {chunkSize: 1Mi, concurrency: 2}\nfillLease: {ttl: 2s, pollInterval: 1s}\n"));
  ASSERT_NO_FATAL_FAILURE(KillMidFill(Source(), 2 * kMiB));
  const uint64_t before_restart = BlobBytes();

  CtlResult second = Fetch(0, Source());
  ASSERT_EQ(second.exit_code, 0) << second.err << Logs();
  ExpectModel();
  uint64_t second_fill = 0;
  PollUntil([&] { return (second_fill = BlobBytes() - before_restart) > 0; }, 5s, 20ms);
  EXPECT_GT(second_fill, 0u);
  EXPECT_LE(second_fill, model_bytes_ - committed_at_kill_ + kMiB)
      << "the second fill reads only what the journal did not hold (a retried chunk aside): "
      << committed_at_kill_ << " bytes were committed\n" << Logs();
}

// --- hf:// ----------------------------------------------------------------------------------

class HfFillTest : public HfOciFillTest {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testing::HfHubServer>> hub = testing::HfHubServer::Start();
    if (!hub.ok()) GTEST_SKIP() << "test hub (node) not available: " << hub.status();
    hub_ = *std::move(hub);
    files_ = testing::WriteRandomModel(dir_.Path() / "repo", {{"model-00001.safetensors", 5 * kMiB + 777},
                                                              {"model-00002.safetensors", 2 * kMiB},
                                                              {"config.json", 300}});
    for (const v1::ManifestFile& file : files_) model_bytes_ += file.size();
    ASSERT_TRUE(hub_->AddRepo("org/model").ok());
    ASSERT_TRUE(hub_->Commit("org/model", dir_.Path() / "repo").ok());
  }

  std::string AgentYaml(const std::string& fill) const {
    return Concat("fill: ", fill, "\nfillLease: {ttl: 2s, pollInterval: 1s}\nhf: {endpoint: \"", hub_->Endpoint(),
                  "\"}\n");
  }

  // Bytes the storage host and the Hub (small git files) served.
  uint64_t ServedBytes() const {
    absl::StatusOr<std::map<std::string, int64_t>> stats = hub_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? (*stats)["storage_bytes"] + (*stats)["hub_bytes"] : 0;
  }

  std::string StatsText() const {
    std::string text = "hub stats:";
    absl::StatusOr<std::map<std::string, int64_t>> stats = hub_->Stats();
    if (stats.ok()) {
      for (const auto& [name, value] : *stats) text += Concat(" ", name, "=", std::to_string(value));
    }
    return text + "\n";
  }

  void ExpectModel() {
    const fs::path model = Shared() / "models" / "m" / "v1";
    for (const v1::ManifestFile& file : files_) {
      absl::StatusOr<std::string> digest = Sha256OfFile(model / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << file.path();
    }
    EXPECT_EQ(testing::FindPartialModel(Shared()), "");
  }

  std::unique_ptr<testing::HfHubServer> hub_;
  std::vector<v1::ManifestFile> files_;
  uint64_t model_bytes_ = 0;
};

TEST_F(HfFillTest, FourAgentsOnOneVolumeDownloadTheRepoOnce) {
  // Slow enough that the four requests meet one fill in flight.
  ASSERT_TRUE(hub_->SetOptions(R"({"storageBytesPerSecond": 8000000})").ok());
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(StartAgent(i, AgentYaml("{chunkSize: 256Ki}")));
  ASSERT_NO_FATAL_FAILURE(FetchOnFourAgents("hf://org/model"));
  ExpectModel();
  uint64_t served = 0;
  PollUntil([&] { return (served = ServedBytes()) >= model_bytes_; }, 5s, 20ms);
  EXPECT_GE(served, model_bytes_) << StatsText() << Logs();
  EXPECT_LE(served, model_bytes_ + model_bytes_ / 20) << "each byte once, a few retried chunks aside\n" << Logs();
}

TEST_F(HfFillTest, AFillKilledMidwayResumesFromStaging) {
  ASSERT_TRUE(hub_->SetOptions(R"({"storageBytesPerSecond": 2000000})").ok());
  ASSERT_NO_FATAL_FAILURE(StartAgent(0, AgentYaml("{chunkSize: 256Ki, concurrency: 2}")));
  ASSERT_NO_FATAL_FAILURE(KillMidFill("hf://org/model", 2 * kMiB));
  const uint64_t before_restart = ServedBytes();
  ASSERT_TRUE(hub_->SetOptions(R"({"storageBytesPerSecond": 0})").ok());

  CtlResult second = Fetch(0, "hf://org/model");
  ASSERT_EQ(second.exit_code, 0) << second.err << Logs();
  ExpectModel();
  const uint64_t second_fill = ServedBytes() - before_restart;
  EXPECT_GT(second_fill, 0u);
  EXPECT_LE(second_fill, model_bytes_ - committed_at_kill_ + 256 * 1024)
      << "the second fill reads only what the journal did not hold (a retried chunk aside): "
      << committed_at_kill_ << " bytes were committed\n" << Logs();
}

}  // namespace
}  // namespace modelcache
