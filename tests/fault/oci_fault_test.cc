// Fault cases of oci:// sources against Debian's docker-registry: a corrupted blob, hostile
// tar layers (../, an absolute path, a symlink out), refused and missing credentials. Each case
// asserts the three promises: a clear error naming what and where, nothing partial under
// models/, every other model untouched (and nothing written outside staging).
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/concat.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/oci_registry.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::AgentProcess;
using testing::CtlResult;

constexpr int kExitRequestFailed = 4;

class FaultOciSources : public ::testing::Test {
 protected:
  void Start(const testing::OciRegistryOptions& registry_options = {}, const std::string& extra_yaml = "") {
    absl::StatusOr<std::unique_ptr<testing::OciRegistry>> registry = testing::OciRegistry::Start(registry_options);
    if (absl::IsFailedPrecondition(registry.status())) GTEST_SKIP() << registry.status();
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent =
        AgentProcess::Start({.directory = dir_.Path(),
                             .node_name = "oci-fault-agent",
                             .cache_root = CacheRoot(),
                             .socket = dir_.Path() / "run" / "agent.sock",
                             .network_allow = testing::LoopbackOrigins(),
                             .extra_yaml = "fill: {chunkSize: 64Ki, stallTimeout: 10s}\n" + extra_yaml});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    // The model every case leaves untouched.
    absl::StatusOr<std::string> other =
        testing::PushModelPack(*registry_, "other", "v1", {{"o.bin", std::string(200'000, 'o')}});
    ASSERT_TRUE(other.ok()) << other.status() << registry_->Log();
    CtlResult fetched = Fetch("other", Uri("other:v1"));
    ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent_->Log();
    others_before_ = testing::HashPublishedModels(CacheRoot());
  }

  fs::path CacheRoot() const { return dir_.Path() / "cache"; }
  std::string Uri(std::string_view rest) const { return Concat("oci://", registry_->Host(), "/", rest); }

  CtlResult Fetch(const std::string& name, const std::string& source) {
    return testing::RunCtl({.directory = dir_.Path(), .socket = dir_.Path() / "run" / "agent.sock"},
                           {"fetch", "--model", name, "--version", "1", "--source", source, "--timeout", "90s"});
  }

  void ExpectRefused(const CtlResult& result, const std::string& name, const std::string& code,
                     const std::vector<std::string>& words) {
    EXPECT_EQ(result.exit_code, kExitRequestFailed) << result.out << result.err;
    EXPECT_THAT(result.err, HasSubstr(code + ": ")) << agent_->Log();
    for (const std::string& word : words) EXPECT_THAT(result.err, HasSubstr(word));
    EXPECT_FALSE(fs::exists(CacheRoot() / "models" / name)) << "nothing of " << name << " is published";
    EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
    EXPECT_EQ(testing::HashPublishedModels(CacheRoot(), name, "1"), others_before_) << "the other model changed";
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::OciRegistry> registry_;
  std::unique_ptr<AgentProcess> agent_;
  std::map<std::string, std::string> others_before_;
};

TEST_F(FaultOciSources, ACorruptedRawBlobIsDataLossAndNothingIsPublished) {
  ASSERT_NO_FATAL_FAILURE(Start());
  if (IsSkipped()) return;
  const std::string weights(500'000, 'w');
  ASSERT_TRUE(testing::PushModelPack(*registry_, "corrupt", "v1", {{"w.bin", weights}}).ok());
  std::string damaged = weights;
  damaged[123'456] = 'X';
  ASSERT_TRUE(registry_->CorruptBlob("sha256:" + testing::Sha256Hex(weights), damaged).ok());
  ExpectRefused(Fetch("corrupt", Uri("corrupt:v1")), "corrupt", "DATA_LOSS", {"w.bin", "sha256 mismatch"});
}

TEST_F(FaultOciSources, ACorruptedTarLayerIsDataLossAndNothingIsPublished) {
  ASSERT_NO_FATAL_FAILURE(Start());
  if (IsSkipped()) return;
  const std::string layer = testing::TarArchive({{"models/w.bin", '0', std::string(300'000, 'w')}}, false);
  ASSERT_TRUE(testing::PushArtifact(*registry_, "corrupt-car", "v1", "", "application/vnd.oci.image.config.v1+json",
                                    {{"application/vnd.oci.image.layer.v1.tar", layer, {}}})
                  .ok());
  std::string damaged = layer;
  damaged[1000] ^= 0x55;  // inside the file's data: the tar still parses
  ASSERT_TRUE(registry_->CorruptBlob("sha256:" + testing::Sha256Hex(layer), damaged).ok());
  ExpectRefused(Fetch("corrupt-car", Uri("corrupt-car:v1")), "corrupt-car", "DATA_LOSS",
                {"layer sha256:" + testing::Sha256Hex(layer), "digest mismatch"});
}

TEST_F(FaultOciSources, HostileTarLayersAreRefusedAndNothingLandsOutsideStaging) {
  ASSERT_NO_FATAL_FAILURE(Start());
  if (IsSkipped()) return;
  const std::vector<std::pair<testing::TarEntry, std::string>> cases = {
      {{"models/../../../escape.txt", '0', "x"}, "\"..\""},
      {{"/tmp/escape.txt", '0', "x"}, "absolute path"},
      {{"models/passwd", '2', "", "/etc/passwd"}, "outside the model folder"},
      {{"models/up", '2', "", "../../../../etc/shadow"}, "outside the model folder"},
  };
  int index = 0;
  for (const auto& [entry, want] : cases) {
    const std::string name = Concat("hostile", index++);
    const std::string layer =
        testing::TarArchive({{"models/ok.bin", '0', "fine"}, entry, {"models/after.bin", '0', "after"}}, true);
    ASSERT_TRUE(testing::PushArtifact(*registry_, name, "v1", "", "application/vnd.oci.image.config.v1+json",
                                      {{"application/vnd.oci.image.layer.v1.tar+gzip", layer, {}}})
                    .ok());
    ExpectRefused(Fetch(name, Uri(name + ":v1")), name, "INVALID_ARGUMENT", {entry.name, want});
    EXPECT_FALSE(fs::exists(CacheRoot() / "escape.txt"));
    EXPECT_FALSE(fs::exists(fs::path("/tmp/escape.txt")));
    EXPECT_FALSE(fs::exists(CacheRoot() / "staging" / name)) << "the staging of a refused layer is removed";
  }
}

TEST_F(FaultOciSources, RefusedCredentialsArePermissionDenied) {
  const fs::path docker_config = dir_.Path() / "wrong.json";
  std::ofstream(docker_config) << R"({"auths": {"127.0.0.1": {"auth": "dGVzdGVyOndyb25n"}}})";  // tester:wrong
  testing::TempDir unused;
  // The registry wants "tester"; the agent has no credentials for it at first.
  absl::StatusOr<std::unique_ptr<testing::OciRegistry>> registry =
      testing::OciRegistry::Start({.htpasswd_user = "tester"});
  if (absl::IsFailedPrecondition(registry.status())) GTEST_SKIP() << registry.status();
  ASSERT_TRUE(registry.ok()) << registry.status();
  registry_ = *std::move(registry);
  ASSERT_TRUE(testing::PushModelPack(*registry_, "locked", "v1", {{"w.bin", "secret weights"}}).ok());
  std::ofstream(docker_config) << Concat(R"({"auths": {")", registry_->Host(), R"(": {"auth": "dGVzdGVyOndyb25n"}}})");
  for (const bool with_config : {false, true}) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = with_config ? "with-config" : "without-config",
         .cache_root = CacheRoot(),
         .socket = dir_.Path() / "run" / (with_config ? "a.sock" : "b.sock"),
         .network_allow = testing::LoopbackOrigins(),
         .extra_yaml = with_config ? Concat("oci: {dockerConfig: \"", docker_config.string(), "\"}\n") : ""});
    ASSERT_TRUE(agent.ok()) << agent.status();
    CtlResult result = testing::RunCtl(
        {.directory = dir_.Path(), .socket = dir_.Path() / "run" / (with_config ? "a.sock" : "b.sock")},
        {"fetch", "--model", "locked", "--version", "1", "--source", Concat("oci://", registry_->Host(), "/locked:v1")});
    EXPECT_EQ(result.exit_code, kExitRequestFailed) << result.err;
    EXPECT_THAT(result.err, HasSubstr("PERMISSION_DENIED: "));
    EXPECT_THAT(result.err, HasSubstr(with_config ? "refused" : "oci.dockerConfig"));
    EXPECT_FALSE(fs::exists(CacheRoot() / "models" / "locked"));
    EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
  }
}

}  // namespace
}  // namespace modelcache
