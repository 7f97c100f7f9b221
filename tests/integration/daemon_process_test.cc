// The daemon launchers tests share (tests/testing/agent_process.h, coordinator_process.h):
// they start the real binaries from options, wait until they accept, report a daemon that
// exits at start with its log, and restart one with the same options.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/testing/agent_process.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/ports.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

AgentProcessOptions Options(const TempDir& dir) {
  return {.directory = dir.Path(),
          .node_name = "node-x",
          .cache_root = dir.Path() / "cache",
          .socket = dir.Path() / "run" / "agent.sock",
          .extra_yaml = "leaseTtl: 7s\n"};
}

TEST(AgentProcess, StartsFromOptionsAndRestartsOnTheSameFolders) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<AgentProcess>> agent = AgentProcess::Start(Options(dir));
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_TRUE(UnixSocketAccepts((*agent)->Socket()));
  std::string config = ReadTestFile((*agent)->ConfigPath());
  EXPECT_THAT(config, HasSubstr("nodeName: node-x\n"));
  EXPECT_THAT(config, HasSubstr("leaseTtl: 7s\n"));
  EXPECT_THAT(config, Not(HasSubstr("coordinator:")));
  ASSERT_TRUE((*agent)->WaitForLogLine("agent serving node=node-x", 10s)) << (*agent)->Log();

  absl::Status restarted = (*agent)->Restart();
  EXPECT_EQ(restarted.code(), absl::StatusCode::kFailedPrecondition) << restarted;
  const std::filesystem::path first_log = (*agent)->LogPath();
  ASSERT_TRUE((*agent)->Kill(SIGKILL).ok());
  absl::StatusOr<ExitStatus> exit = (*agent)->WaitExit(10s);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->signal, SIGKILL) << exit->ToString();
  EXPECT_FALSE((*agent)->Running());

  restarted = (*agent)->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_TRUE(UnixSocketAccepts((*agent)->Socket()));
  EXPECT_NE((*agent)->LogPath(), first_log) << "each run logs to a file of its own";
  ASSERT_TRUE((*agent)->WaitForLogLine("agent serving node=node-x", 10s)) << (*agent)->Log();
  EXPECT_TRUE((*agent)->Stop().Success());
}

TEST(AgentProcess, AnAgentThatExitsAtStartIsAnErrorQuotingItsLog) {
  TempDir dir;
  AgentProcessOptions options = Options(dir);
  options.extra_yaml = "noSuchKey: 1\n";
  absl::StatusOr<std::unique_ptr<AgentProcess>> agent = AgentProcess::Start(options);
  ASSERT_FALSE(agent.ok());
  EXPECT_THAT(std::string(agent.status().message()), HasSubstr("node-x exited"));
  EXPECT_THAT(std::string(agent.status().message()), HasSubstr("noSuchKey: unknown key"));
}

TEST(CoordinatorProcess, ListensAndRestartsOnTheSamePort) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator =
      CoordinatorProcess::Start({.directory = dir.Path(), .default_caching = "disabled"});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  const uint16_t port = (*coordinator)->Port();
  ASSERT_NE(port, 0);
  EXPECT_EQ((*coordinator)->Address(), "127.0.0.1:" + std::to_string(port));
  EXPECT_TRUE(TcpPortAccepts(port));
  EXPECT_THAT(ReadTestFile((*coordinator)->ConfigPath()), HasSubstr("  defaultCaching: disabled\n"));
  ASSERT_TRUE((*coordinator)->WaitForLogLine("coordinator listening", 10s)) << (*coordinator)->Log();

  EXPECT_TRUE((*coordinator)->Stop().Success());
  EXPECT_FALSE(TcpPortAccepts(port));
  absl::Status restarted = (*coordinator)->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_EQ((*coordinator)->Port(), port);
  EXPECT_TRUE(TcpPortAccepts(port));
}

TEST(CoordinatorProcess, ExtraLinesGoUnderTheCoordinatorKey) {
  CoordinatorProcessOptions options{.directory = "/d", .port = 4242,
                                    .coordinator_extra_yaml = "a: 1\nb: 2"};
  EXPECT_THAT(CoordinatorConfigYaml(options),
              HasSubstr("coordinator:\n  listen: 127.0.0.1:4242\n  database: /d/c.db\n"
                        "  defaultCaching: enabled\n  a: 1\n  b: 2\n"));
}

}  // namespace
}  // namespace modelcache::testing
