// AgentServer in process (agent/agent_server.h): the whole agent built from a config, without
// a process, as main.cc starts it. A client reaches it over its Unix socket as a pod would.
#include "agent/agent_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "agent/config.h"
#include "common/sha256.h"
#include "modelcache/v1/agent.grpc.pb.h"
#include "tests/testing/http_get.h"
#include "tests/testing/random_model.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The last progress of an Ensure and how the stream ended.
struct EnsureOutcome {
  grpc::Status status;
  v1::EnsureProgress last;
};

EnsureOutcome Ensure(const std::string& socket, const v1::EnsureRequest& request) {
  auto stub = v1::Agent::NewStub(
      grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  EnsureOutcome outcome;
  auto reader = stub->Ensure(&context, request);
  v1::EnsureProgress progress;
  while (reader->Read(&progress)) outcome.last = progress;
  outcome.status = reader->Finish();
  return outcome;
}

TEST(AgentServerInProcess, FillsAFileSourceOverItsSocketThenShutsDown) {
  testing::TempDir dir;
  const fs::path origin = dir.Path() / "origin" / "m";
  std::vector<v1::ManifestFile> files =
      testing::WriteRandomModel(origin, {{"config.json", 1000}, {"weights/0.bin", 3 << 20}});
  const std::string socket = dir.Join("run/agent.sock");
  // ext4 as far as the storage check knows: a test's temp folder may be a tmpfs.
  absl::StatusOr<AgentConfig> config = ParseAgentConfig(
      "cacheRoot: " + dir.Join("cache") + "\nsocket: " + socket +
          "\nmetricsAddress: 127.0.0.1:0\nnodeName: node-a\ntestOnlyFilesystemType: ext4\n"
          "fileSources:\n- " + (dir.Path() / "origin").string() + "\n",
      AgentFlags{}, ProcessEnvironment{});
  ASSERT_TRUE(config.ok()) << config.status();

  absl::StatusOr<std::unique_ptr<AgentServer>> server = AgentServer::Start(*config);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->Ready());
  ASSERT_GT((*server)->MetricsPort(), 0);
  const std::string metrics = "http://127.0.0.1:" + std::to_string((*server)->MetricsPort());
  EXPECT_EQ(testing::HttpGet(metrics + "/readyz").status, 200);

  v1::EnsureRequest request;
  request.set_name("m");
  request.set_version("v1");
  request.set_source("file://" + origin.string());
  EnsureOutcome filled = Ensure(socket, request);
  ASSERT_TRUE(filled.status.ok()) << filled.status.error_message();
  ASSERT_EQ(filled.last.state(), v1::EnsureProgress::READY);
  EXPECT_FALSE(filled.last.hit());
  for (const v1::ManifestFile& file : files) {
    absl::StatusOr<std::string> digest = Sha256OfFile(fs::path(filled.last.path()) / file.path());
    ASSERT_TRUE(digest.ok()) << digest.status();
    EXPECT_EQ(*digest, file.sha256()) << file.path();
  }
  EnsureOutcome hit = Ensure(socket, request);
  ASSERT_TRUE(hit.status.ok()) << hit.status.error_message();
  EXPECT_TRUE(hit.last.hit());

  (*server)->Shutdown();
  EXPECT_FALSE((*server)->Ready());
  EnsureOutcome after = Ensure(socket, request);
  EXPECT_FALSE(after.status.ok()) << "the socket still answers after Shutdown";
}

}  // namespace
}  // namespace modelcache
