// Fault cases (issue #11, 3): configuration that silently turned security off. yaml-cpp keeps
// both copies of a key written twice and the last one won: `tokensFile: X` then
// `tokensFile: ""`, or a second `coordinator:` block, started the coordinator with auth=off,
// and a key outside any block the coordinator knows (a mis-indented tokensFile) was ignored.
// The real daemons read these files: each refuses to start, its error names the key and its
// line, and the cache volume (a model the real agent filled from nginx) is left as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/source_access.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/random_model.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr auto kExitDeadline = 30s;

struct Refusal {
  testing::ExitStatus exit;
  std::string err;
};

class FaultConfigs : public ::testing::Test {
 protected:
  // A cache volume with one model the real agent filled from nginx; the agent is stopped
  // again, so the volume is at rest when a daemon reads a bad file.
  void SetUp() override {
    fs::path origin = dir_.Path() / "origin";
    files_ = testing::WriteRandomModel(origin / "keeper", {{"config.json", 1500}, {"w.bin", 300'000}});
    ASSERT_TRUE(testing::WriteTestFile(origin / "keeper" / "modelcache.json", testing::HttpListingJson(files_)));
    auto nginx = testing::NginxServer::Start({.root = origin.string()});
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    cache_root_ = dir_.Path() / "cache";
    auto agent = testing::AgentProcess::Start({.directory = dir_.Path(),
                                               .cache_root = cache_root_,
                                               .socket = dir_.Path() / "run" / "agent.sock",
                                               .network_allow = testing::LoopbackOrigins()});
    ASSERT_TRUE(agent.ok()) << agent.status();
    testing::CtlResult fetched =
        testing::RunCtl({.directory = dir_.Path(), .socket = (*agent)->Socket()},
                        {"fetch", "--model", "keeper", "--version", "v1", "--source",
                         (*nginx)->BaseUrl() + "/keeper/"});
    ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
    (*agent)->Stop();
    before_ = testing::HashPublishedModels(cache_root_);
    ASSERT_EQ(before_.size(), files_.size() + 1) << "the model's files and its manifest";
  }

  // Runs `binary --config <file holding yaml>` and waits for it to end on its own.
  Refusal RunDaemon(const std::string& binary, const std::string& file_name, const std::string& yaml) {
    const fs::path config = dir_.Path() / file_name;
    EXPECT_TRUE(testing::WriteTestFile(config, yaml));
    testing::SubprocessOptions options;
    options.argv = {binary, "--config", config.string()};
    options.stderr_path = (dir_.Path() / (file_name + ".err")).string();
    options.stdout_path = (dir_.Path() / (file_name + ".out")).string();
    Refusal refusal;
    auto process = testing::Subprocess::Start(options);
    if (!process.ok()) {
      ADD_FAILURE() << process.status();
      return refusal;
    }
    absl::StatusOr<testing::ExitStatus> exit = (*process)->WaitExit(kExitDeadline);
    EXPECT_TRUE(exit.ok()) << binary << " did not refuse " << config << ": it runs";
    if (exit.ok()) refusal.exit = *exit;
    refusal.err = testing::ReadTestFile(options.stderr_path);
    return refusal;
  }

  Refusal RunCoordinator(const std::string& yaml) {
    return RunDaemon(MODELCACHE_BINARY_DIR "/coordinator/modelcache-coordinator", "coordinator.yaml", yaml);
  }
  Refusal RunAgent(const std::string& yaml) {
    return RunDaemon(MODELCACHE_BINARY_DIR "/agent/modelcache-agent", "agent.yaml", yaml);
  }

  // The start of a coordinator file that turns authentication on, lines 1 to 5.
  std::string CoordinatorWithAuth() {
    EXPECT_TRUE(testing::WriteTestFile(dir_.Path() / "tokens", "s3cret-admin admin\ns3cret-agent agent\n"));
    return absl::StrCat("modelsCacheStorage: {storageSize: 10Gi}\n",               // 1
                        "coordinator:\n",                                           // 2
                        "  listen: 127.0.0.1:", port_, "\n",                        // 3
                        "  database: ", (dir_.Path() / "c.db").string(), "\n",      // 4
                        "  tokensFile: ", (dir_.Path() / "tokens").string(), "\n");  // 5
  }

  // The start of an agent file on the volume, lines 1 to 3.
  std::string AgentStart() {
    return absl::StrCat("cacheRoot: ", cache_root_.string(), "\n",                     // 1
                        "socket: ", (dir_.Path() / "run2" / "agent.sock").string(), "\n",  // 2
                        "nodeName: refused\n");                                        // 3
  }

  // The refusal is a clean exit 2 with a message naming the key and its line; the
  // coordinator never listened nor created its database.
  void ExpectRefused(const Refusal& refusal, const std::string& what) {
    EXPECT_TRUE(refusal.exit.exited && refusal.exit.code == 2) << refusal.exit.ToString() << ": " << refusal.err;
    EXPECT_THAT(refusal.err, HasSubstr(what));
    EXPECT_FALSE(testing::TcpPortAccepts(port_));
    EXPECT_FALSE(fs::exists(dir_.Path() / "c.db"));
  }

  // Nothing partial under models/, and the model there is byte-for-byte what it was.
  void ExpectVolumeUntouched() {
    EXPECT_EQ(testing::FindPartialModel(cache_root_), "");
    EXPECT_EQ(testing::HashPublishedModels(cache_root_), before_);
  }

  testing::TempDir dir_;
  fs::path cache_root_;
  std::vector<v1::ManifestFile> files_;
  std::map<std::string, std::string> before_;
  uint16_t port_ = testing::FreeTcpPort();
};

TEST_F(FaultConfigs, CoordinatorRefusesATokensFileRepeatedEmptyInsteadOfRunningWithoutAuth) {
  Refusal refusal = RunCoordinator(CoordinatorWithAuth() +
                                   "  defaultCaching: enabled\n"  // 6
                                   "  tokensFile: \"\"\n");       // 7
  ExpectRefused(refusal, "line 7: coordinator.tokensFile: duplicate key (first at line 5)");
  EXPECT_THAT(refusal.err, HasSubstr((dir_.Path() / "coordinator.yaml").string()));
  EXPECT_THAT(refusal.err, ::testing::Not(HasSubstr("auth=off")));
  ExpectVolumeUntouched();
}

TEST_F(FaultConfigs, CoordinatorRefusesASecondCoordinatorBlock) {
  Refusal refusal = RunCoordinator(CoordinatorWithAuth() +
                                   "coordinator:\n"  // 6
                                   "  defaultCaching: enabled\n");
  ExpectRefused(refusal, "line 6: coordinator: duplicate key (first at line 2)");
  ExpectVolumeUntouched();
}

TEST_F(FaultConfigs, CoordinatorRefusesAKeyOutsideItsBlocks) {
  // tokensFile written at the top level (one indent lost): it was ignored, and auth off.
  Refusal refusal = RunCoordinator(absl::StrCat("modelsCacheStorage: {storageSize: 10Gi}\n",  // 1
                                                "coordinator:\n",                              // 2
                                                "  listen: 127.0.0.1:", port_, "\n",           // 3
                                                "tokensFile: /etc/modelcache/tokens\n"));      // 4
  ExpectRefused(refusal, "line 4: tokensFile: unknown key (known: modelsCacheStorage, coordinator, kubernetes, webhook)");
  ExpectVolumeUntouched();
}

TEST_F(FaultConfigs, CoordinatorRefusesAnUnknownKeyInANestedBlockWithItsLine) {
  Refusal refusal = RunCoordinator(CoordinatorWithAuth() +
                                   "  tls:\n"           // 6
                                   "    cert: a.pem\n"  // 7
                                   "    caFile: ca.pem\n");  // 8
  ExpectRefused(refusal, "line 8: coordinator.tls.caFile: unknown key");
  ExpectVolumeUntouched();
}

TEST_F(FaultConfigs, AgentRefusesARepeatedTopLevelKey) {
  ASSERT_TRUE(testing::WriteTestFile(dir_.Path() / "agent-token", "s3cret-agent\n"));
  Refusal refusal = RunAgent(AgentStart() +
                             "coordinatorTokenFile: " + (dir_.Path() / "agent-token").string() + "\n" +  // 4
                             "coordinator: 127.0.0.1:" + std::to_string(port_) + "\n" +                 // 5
                             "coordinatorTokenFile: \"\"\n");                                           // 6
  ExpectRefused(refusal, "line 6: coordinatorTokenFile: duplicate key (first at line 4)");
  EXPECT_FALSE(fs::exists(dir_.Path() / "run2" / "agent.sock"));
  ExpectVolumeUntouched();
}

TEST_F(FaultConfigs, AgentRefusesARepeatedKeyInANestedBlock) {
  Refusal refusal = RunAgent(AgentStart() +
                             "coordinatorTls:\n"                   // 4
                             "  caFile: /etc/modelcache/ca.pem\n"  // 5
                             "  enabled: true\n"                   // 6
                             "  caFile: \"\"\n");                  // 7
  ExpectRefused(refusal, "line 7: coordinatorTls.caFile: duplicate key (first at line 5)");
  EXPECT_FALSE(fs::exists(dir_.Path() / "run2" / "agent.sock"));
  ExpectVolumeUntouched();
}

TEST_F(FaultConfigs, AgentNamesTheLineOfAnUnknownNestedKey) {
  Refusal refusal = RunAgent(AgentStart() +
                             "fill:\n"                // 4
                             "  concurrency: 4\n"     // 5
                             "  chunksize: 8Mi\n");   // 6
  ExpectRefused(refusal, "line 6: fill.chunksize: unknown key");
  ExpectVolumeUntouched();
}

}  // namespace
}  // namespace modelcache
