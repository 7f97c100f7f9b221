// Fault cases of issue 11 about what a client sends: hostile model names and sources, each
// refused with its code, and a source URI far over any sane length.
// It came back as "RESOURCE_EXHAUSTED: received initial metadata size exceeds limit" (the
// agent's answer quoted it and did not fit gRPC's 8 KiB of metadata: the code of a full disk)
// and went whole into the log. Each case checks the three promises.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "common/uri.h"
#include "modelcache/v1/agent.grpc.pb.h"
#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CtlResult;
using testing::NginxLocation;
using testing::NginxServer;

class FaultRequests : public testing::FaultCase {};

// The agent's answer to one Ensure, through gRPC directly (modelcachectl refuses first).
grpc::Status EnsureDirectly(const std::filesystem::path& socket, const std::string& source) {
  auto channel = grpc::CreateChannel("unix:" + socket.string(), grpc::InsecureChannelCredentials());
  std::unique_ptr<v1::Agent::Stub> stub = v1::Agent::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::EnsureRequest request;
  request.set_name("long");
  request.set_version("v1");
  request.set_source(source);
  std::unique_ptr<grpc::ClientReader<v1::EnsureProgress>> reader = stub->Ensure(&context, request);
  v1::EnsureProgress progress;
  while (reader->Read(&progress)) {
  }
  return reader->Finish();
}

TEST_F(FaultRequests, ASourceUriOverTheLimitIsInvalidArgumentAndStaysOutOfTheLog) {
  absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
      testing::NginxServer::Start({.root = dir_.Path().string()});
  ASSERT_TRUE(origin.ok()) << origin.status();
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  const std::string base = (*origin)->BaseUrl() + "/models/";

  // modelcachectl refuses it before it reaches the agent (an argument can hold 128 KiB).
  const std::string long_uri = base + std::string(100'000, 'a') + "/";
  CtlResult client = Fetch("long", long_uri);
  EXPECT_EQ(client.exit_code, 2) << client.err.substr(0, 2000);
  EXPECT_THAT(client.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(client.err, HasSubstr("source uri of " + std::to_string(long_uri.size()) +
                                    " bytes is longer than the limit of 4096 bytes"));
  EXPECT_LT(client.err.size(), 2000u) << "the error quotes the whole URI";
  EXPECT_EQ(client.out, "");
  // So does the local fallback.
  CtlResult local = Fetch("long", long_uri, {"--dest", (dir_.Path() / "local").string()},
                          {"MODELCACHE_DISABLE=true"});
  EXPECT_EQ(local.exit_code, 2) << local.err.substr(0, 2000);
  EXPECT_THAT(local.err, HasSubstr("INVALID_ARGUMENT"));

  // The agent answers a client that does not check with INVALID_ARGUMENT, not a gRPC error.
  const std::string huge_uri = base + std::string(1 << 20, 'b') + "/";
  grpc::Status agent = EnsureDirectly(agent_->Socket(), huge_uri);
  EXPECT_EQ(agent.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << agent.error_message();
  EXPECT_THAT(agent.error_message(), HasSubstr("model long@v1: source uri of " +
                                               std::to_string(huge_uri.size()) + " bytes"));
  EXPECT_LT(agent.error_message().size(), 1000u);

  // A URI of exactly the limit is a source like any other: here one that is not there.
  std::string at_limit = base + "missing/";
  at_limit.insert(at_limit.size() - 1, std::string(kMaxSourceUriBytes - at_limit.size(), 'c'));
  ASSERT_EQ(at_limit.size(), kMaxSourceUriBytes);
  CtlResult missing = Fetch("limit", at_limit);
  EXPECT_EQ(missing.exit_code, 4) << missing.err.substr(0, 2000);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));

  // No log line carries the megabyte: a logged value is cut after 4 KiB.
  std::istringstream log(agent_->Log());
  size_t longest = 0;
  for (std::string line; std::getline(log, line);) longest = std::max(longest, line.size());
  EXPECT_LT(longest, 16'000u);
  EXPECT_THAT(agent_->Log(), HasSubstr("bytes in all]"));
  ExpectNothingPartialAndBystanderUntouched({"long", "limit"});
}

TEST_F(FaultRequests, HostileNamesAndSourcesAreRefusedWithTheirCodesAndTheAgentServesOn) {
  const fs::path www = dir_.Path() / "www";
  ASSERT_TRUE(testing::WriteTestFile(www / "small" / "weights.bin", std::string(70'000, 'w')));
  absl::StatusOr<std::unique_ptr<NginxServer>> origin = NginxServer::Start(
      {.root = www.string(),
       .locations = {NginxLocation{.prefix = "/forbidden/", .return_status = 403}}});
  ASSERT_TRUE(origin.ok()) << origin.status();
  const std::string base = (*origin)->BaseUrl();
  ASSERT_NO_FATAL_FAILURE(StartAgent());

  struct Hostile {
    std::string name;
    std::string source;
    std::string code;
    std::string names;  // what the message must name
  };
  const std::vector<Hostile> cases = {
      {"../x", base + "/small/weights.bin", "INVALID_ARGUMENT", "../x"},
      {"bystander/../../etc", base + "/small/weights.bin", "INVALID_ARGUMENT", "bystander/../../etc"},
      {"", base + "/small/weights.bin", "INVALID_ARGUMENT", "name"},
      {std::string(129, 'a'), base + "/small/weights.bin", "INVALID_ARGUMENT", "128"},
      {"ok-name", "ftp://example.com/model/", "INVALID_ARGUMENT", "ftp"},
      {"ok-name", base + "/small/../../etc/passwd", "INVALID_ARGUMENT", ".."},
      {"missing", base + "/no-such-model/", "NOT_FOUND", base + "/no-such-model/"},
      {"secret", base + "/forbidden/x.bin", "PERMISSION_DENIED", base + "/forbidden/x.bin"},
  };
  std::vector<std::string> failed;
  for (const Hostile& hostile : cases) {
    SCOPED_TRACE(hostile.name + " " + hostile.source);
    CtlResult result = Fetch(hostile.name, hostile.source);
    EXPECT_NE(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, "");
    // Promise 1: the code and what was refused.
    EXPECT_THAT(result.err, HasSubstr(hostile.code));
    EXPECT_THAT(result.err, HasSubstr(hostile.names));
    if (hostile.name == "missing" || hostile.name == "secret") failed.push_back(hostile.name);
  }
  CtlResult usage = RunCtl(Ctl(), {"fetch", "--model", "x"});
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
  // Without a coordinator there is no registry to name the source: the request must.
  CtlResult no_source = RunCtl(Ctl(), {"fetch", "--model", "small", "--version", "v1"});
  EXPECT_NE(no_source.exit_code, 0);
  EXPECT_THAT(no_source.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(no_source.err, HasSubstr("EnsureRequest.source is empty"));
  // A download without the agent has no registry either: --fallback needs the source.
  CtlResult fallback = RunCtl(Ctl(), {"fetch", "--model", "small", "--version", "v1", "--fallback",
                                      "--dest", dir_.Path().string()});
  EXPECT_EQ(fallback.exit_code, 2) << fallback.err;
  EXPECT_THAT(fallback.err, HasSubstr("--fallback needs --source"));
  // Nothing was written outside the cache's folders, and the agent still serves.
  EXPECT_FALSE(fs::exists(dir_.Path() / "x"));
  EXPECT_FALSE(fs::exists(cache_root_ / "x"));
  CtlResult good = Fetch("small", base + "/small/weights.bin");
  ASSERT_EQ(good.exit_code, 0) << good.err << agent_->Log();
  EXPECT_EQ(testing::ReadTestFile(cache_root_ / "models" / "small" / "v1" / "weights.bin"),
            std::string(70'000, 'w'));
  ExpectNothingPartialAndBystanderUntouched(failed);
}

}  // namespace
}  // namespace modelcache
