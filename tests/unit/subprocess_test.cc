#include "tests/testing/subprocess.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/ports.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {
namespace {

using namespace std::chrono_literals;

bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

TEST(Subprocess, ReportsTheExitCode) {
  auto child = Subprocess::Start({.argv = {"false"}});
  ASSERT_TRUE(child.ok()) << child.status();
  auto exit = (*child)->WaitExit(10s);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited);
  EXPECT_EQ(exit->code, 1);
  EXPECT_FALSE(exit->Success());
}

TEST(Subprocess, PassesArgvAndEnvironmentWithoutAShellAndCapturesOutput) {
  TempDir dir;
  SubprocessOptions options;
  // '$HOME' and ';' reach the program as they are: no shell in between.
  options.argv = {"env"};
  options.environment = {"MODELCACHE_TEST_VALUE=a b;$HOME"};
  options.stdout_path = dir.Join("out.txt");
  auto child = Subprocess::Start(options);
  ASSERT_TRUE(child.ok()) << child.status();
  auto exit = (*child)->WaitExit(10s);
  ASSERT_TRUE(exit.ok() && exit->Success());
  EXPECT_THAT(ReadTestFile(dir.Join("out.txt")), ::testing::HasSubstr("MODELCACHE_TEST_VALUE=a b;$HOME\n"));
}

TEST(Subprocess, ReplacedEnvironmentHoldsOnlyWhatWasGiven) {
  TempDir dir;
  SubprocessOptions options;
  options.argv = {"/usr/bin/env"};
  options.environment = {"ONLY=1"};
  options.inherit_environment = false;
  options.stdout_path = dir.Join("out.txt");
  auto child = Subprocess::Start(options);
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE((*child)->WaitExit(10s).ok());
  EXPECT_EQ(ReadTestFile(dir.Join("out.txt")), "ONLY=1\n");
}

TEST(Subprocess, WaitExitTimesOutWhileRunningAndSignalEndsIt) {
  auto child = Subprocess::Start({.argv = {"sleep", "30"}});
  ASSERT_TRUE(child.ok());
  EXPECT_EQ((*child)->WaitExit(50ms).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE((*child)->Running());
  ASSERT_TRUE((*child)->Signal(SIGTERM).ok());
  auto exit = (*child)->WaitExit(10s);
  ASSERT_TRUE(exit.ok());
  EXPECT_FALSE(exit->exited);
  EXPECT_EQ(exit->signal, SIGTERM);
  EXPECT_EQ((*child)->Signal(SIGTERM).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Subprocess, DestructionKillsTheChild) {
  pid_t pid;
  {
    auto child = Subprocess::Start({.argv = {"sleep", "30"}});
    ASSERT_TRUE(child.ok());
    pid = (*child)->Pid();
    ASSERT_TRUE(ProcessExists(pid));
  }
  EXPECT_FALSE(ProcessExists(pid));  // killed and reaped, not a zombie
}

TEST(Subprocess, UnknownProgramIsAnError) {
  auto child = Subprocess::Start({.argv = {"/nonexistent/modelcache-no-such-program"}});
  EXPECT_FALSE(child.ok());
  EXPECT_THAT(std::string(child.status().message()), ::testing::HasSubstr("modelcache-no-such-program"));
  EXPECT_EQ(Subprocess::Start({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PollUntil, ReturnsTrueOnceThePredicateHoldsAndFalseAtTheDeadline) {
  int calls = 0;
  EXPECT_TRUE(PollUntil([&] { return ++calls == 3; }, 10s, 1ms));
  EXPECT_EQ(calls, 3);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(PollUntil([] { return false; }, 50ms, 5ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

TEST(TempDir, IsCreatedEmptyAndRemovedWithItsContents) {
  std::filesystem::path path;
  {
    TempDir dir;
    path = dir.Path();
    EXPECT_TRUE(std::filesystem::is_directory(path));
    EXPECT_TRUE(std::filesystem::is_empty(path));
    ASSERT_TRUE(WriteTestFile(dir.Join("a/b/c.txt"), "hello"));
    EXPECT_EQ(ReadTestFile(dir.Join("a/b/c.txt")), "hello");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(FreeTcpPort, GivesAPortThatCanBeBoundOnLoopback) {
  const uint16_t port = FreeTcpPort();
  ASSERT_GT(port, 0);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << std::strerror(errno);
  ::close(fd);
}

}  // namespace
}  // namespace modelcache::testing
