// oci:// through the real agent and modelcachectl against Debian's docker-registry (the CNCF
// distribution registry) on 127.0.0.1: ModelPack raw layers in parallel ranges, a gzip
// modelcar image, a digest reference, a tag moved during the fill, htpasswd auth through a
// docker config, the local fallback.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
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
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::AgentProcess;
using testing::CtlResult;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

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

class OciSourceTest : public ::testing::Test {
 protected:
  void StartRegistry(const testing::OciRegistryOptions& options = {}) {
    absl::StatusOr<std::unique_ptr<testing::OciRegistry>> registry = testing::OciRegistry::Start(options);
    if (absl::IsFailedPrecondition(registry.status())) GTEST_SKIP() << registry.status();
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
  }

  // `fill` is the agent's whole fill: map (a key may appear once in the config).
  void StartAgent(const std::string& extra_yaml = "",
                  const std::string& fill = "{chunkSize: 64Ki, concurrency: 4}") {
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent =
        AgentProcess::Start({.directory = dir_.Path(),
                             .node_name = "oci-agent",
                             .cache_root = CacheRoot(),
                             .socket = dir_.Path() / "run" / "agent.sock",
                             .network_allow = testing::LoopbackOrigins(),
                             .extra_yaml = Concat("fill: ", fill, "\n", extra_yaml)});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
  }

  fs::path CacheRoot() const { return dir_.Path() / "cache"; }

  CtlResult Ctl(std::vector<std::string> args, std::vector<std::string> environment = {}) {
    return testing::RunCtl({.directory = dir_.Path(), .socket = dir_.Path() / "run" / "agent.sock",
                            .environment = std::move(environment)},
                           args);
  }

  CtlResult Fetch(const std::string& name, const std::string& source) {
    return Ctl({"fetch", "--model", name, "--version", "1", "--source", source, "--timeout", "120s"});
  }

  std::string Uri(std::string_view rest) const { return Concat("oci://", registry_->Host(), "/", rest); }

  testing::TempDir dir_;
  std::unique_ptr<testing::OciRegistry> registry_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(OciSourceTest, ModelPackRawLayersFillInParallelRangesAndStatShowsTheDigest) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  const std::string weights = RandomBytes(1'500'000, 1);
  const std::string config = R"({"architectures": ["Test"]})";
  absl::StatusOr<std::string> digest =
      testing::PushModelPack(*registry_, "models/llama", "v1", {{"model.safetensors", weights}, {"config.json", config}});
  ASSERT_TRUE(digest.ok()) << digest.status() << registry_->Log();

  CtlResult fetch = Fetch("llama", Uri("models/llama:v1"));
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  const fs::path model = CacheRoot() / "models/llama/1";
  EXPECT_EQ(ReadFile(model / "model.safetensors"), weights);
  EXPECT_EQ(ReadFile(model / "config.json"), config);
  EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
  EXPECT_GE(registry_->BlobRangeResponses(), 20) << "1.5 MB in 64 KiB ranges: " << registry_->Log();
  CtlResult stat = Ctl({"stat", "--model", "llama", "--version", "1"});
  EXPECT_THAT(stat.out, HasSubstr("digest:       " + *digest));

  // The same manifest by digest is another source name, filled from the same blobs.
  CtlResult by_digest = Fetch("llama-pinned", Uri("models/llama@" + *digest));
  ASSERT_EQ(by_digest.exit_code, 0) << by_digest.err << agent_->Log();
  EXPECT_EQ(ReadFile(CacheRoot() / "models/llama-pinned/1/model.safetensors"), weights);
}

TEST_F(OciSourceTest, AGzipModelcarImageIsStreamedAndUnpackedFromModels) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  const std::string weights = RandomBytes(800'000, 2);
  const std::string base = testing::TarArchive({{"bin/", '5'}, {"bin/sh", '0', "busybox"}, {"bin/ls", '2', "", "/bin/sh"}}, true);
  const std::string model = testing::TarArchive(
      {{"models/", '5'}, {"models/weights.bin", '0', weights}, {"models/tokenizer.json", '0', "{}"},
       {"models/latest.bin", '2', "", "weights.bin"}},
      true);
  absl::StatusOr<std::string> digest = testing::PushArtifact(
      *registry_, "kserve/modelcar", "v1", "", "application/vnd.oci.image.config.v1+json",
      {{"application/vnd.oci.image.layer.v1.tar+gzip", base, {}},
       {"application/vnd.oci.image.layer.v1.tar+gzip", model, {}}});
  ASSERT_TRUE(digest.ok()) << digest.status() << registry_->Log();

  CtlResult fetch = Fetch("modelcar", Uri("kserve/modelcar:v1"));
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  const fs::path folder = CacheRoot() / "models/modelcar/1";
  EXPECT_EQ(ReadFile(folder / "weights.bin"), weights);
  EXPECT_EQ(ReadFile(folder / "latest.bin"), weights) << "a link inside the model is a copy";
  EXPECT_EQ(ReadFile(folder / "tokenizer.json"), "{}");
  EXPECT_FALSE(fs::exists(folder / "bin")) << "only /models is the model";
  EXPECT_EQ(testing::HashModel(CacheRoot(), "modelcar", "1").size(), 3u);
  EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
}

TEST_F(OciSourceTest, ATagMovedDuringTheFillKeepsTheFirstDigest) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry());
  if (IsSkipped()) return;
  ASSERT_NO_FATAL_FAILURE(StartAgent("", "{chunkSize: 64Ki, concurrency: 1}"));
  const std::string first = RandomBytes(6'000'000, 3);
  absl::StatusOr<std::string> digest = testing::PushModelPack(*registry_, "moving", "latest", {{"w.bin", first}});
  ASSERT_TRUE(digest.ok()) << digest.status() << registry_->Log();
  // A second manifest, pushed under the tag while the first one's blobs are being read.
  const std::string second = RandomBytes(100, 4);
  testing::SubprocessOptions options;
  options.argv = {MODELCACHE_BINARY_DIR "/cli/modelcachectl", "fetch", "--model", "moving", "--version", "1",
                  "--source", Uri("moving:latest"), "--timeout", "120s"};
  options.environment = {"MODELCACHE_SOCKET=" + (dir_.Path() / "run" / "agent.sock").string()};
  options.stderr_path = (dir_.Path() / "moving.err").string();
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> fetch = testing::Subprocess::Start(options);
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  ASSERT_TRUE(testing::PollUntil([&] { return registry_->BlobRangeResponses() >= 2; }, std::chrono::seconds(30),
                                 std::chrono::milliseconds(5)))
      << registry_->Log();
  absl::StatusOr<std::string> moved = testing::PushModelPack(*registry_, "moving", "latest", {{"w.bin", second}});
  ASSERT_TRUE(moved.ok()) << moved.status();
  absl::StatusOr<testing::ExitStatus> exit = (*fetch)->WaitExit(std::chrono::seconds(120));
  ASSERT_TRUE(exit.ok() && exit->Success()) << ReadFile(dir_.Path() / "moving.err") << agent_->Log();
  EXPECT_EQ(ReadFile(CacheRoot() / "models/moving/1/w.bin"), first);
  CtlResult stat = Ctl({"stat", "--model", "moving", "--version", "1"});
  EXPECT_THAT(stat.out, HasSubstr(*digest));
  EXPECT_THAT(stat.out, ::testing::Not(HasSubstr(*moved)));
}

TEST_F(OciSourceTest, HtpasswdRegistryWithCredentialsFromADockerConfig) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry({.htpasswd_user = "tester"}));
  if (IsSkipped()) return;
  const fs::path docker_config = dir_.Path() / "docker-config.json";
  std::ofstream(docker_config) << Concat(R"({"auths": {")", registry_->Host(),
                                               R"(": {"username": "tester", "password": ")",
                                               testing::kOciTestPassword, R"("}}})");
  ASSERT_NO_FATAL_FAILURE(StartAgent(Concat("oci: {dockerConfig: \"", docker_config.string(), "\"}\n")));
  const std::string weights = RandomBytes(300'000, 5);
  absl::StatusOr<std::string> digest = testing::PushModelPack(*registry_, "private/m", "v1", {{"w.bin", weights}});
  ASSERT_TRUE(digest.ok()) << digest.status() << registry_->Log();
  CtlResult fetch = Fetch("private", Uri("private/m:v1"));
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err << agent_->Log();
  EXPECT_EQ(ReadFile(CacheRoot() / "models/private/1/w.bin"), weights);
}

TEST_F(OciSourceTest, LocalFallbackFillsWithoutAnAgent) {
  ASSERT_NO_FATAL_FAILURE(StartRegistry());
  if (IsSkipped()) return;
  const std::string weights = RandomBytes(200'000, 6);
  absl::StatusOr<std::string> pushed = testing::PushModelPack(*registry_, "local/m", "v1", {{"w.bin", weights}});
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  const fs::path dest = dir_.Path() / "local";
  CtlResult fetch = Ctl({"fetch", "--model", "local", "--version", "1", "--source", Uri("local/m:v1"), "--dest",
                         dest.string()},
                        {"MODELCACHE_DISABLE=true"});
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err;
  const fs::path model = fs::path(fetch.out.substr(0, fetch.out.find('\n')));
  EXPECT_EQ(ReadFile(model / "w.bin"), weights);
}

}  // namespace
}  // namespace modelcache
