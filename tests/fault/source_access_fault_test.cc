// Fault cases: what a pod that can reach the agent's socket can make the agent read. file://
// sources are read only beneath the folders in fileSources, never through a link out of them;
// http(s) sources connect only to addresses the network policy allows (not loopback,
// link-local or cloud metadata unless network.allow names them), after DNS and at every
// redirect. Each case asserts the three promises: a clear error naming what, where and the
// key to set (or success); nothing partial under models/; every other model untouched.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::AgentProcess;
using testing::CtlResult;

constexpr int kExitRequestFailed = 4;  // modelcachectl: the request failed
constexpr char kMetadataAddress[] = "169.254.169.254";

// An agent whose fileSources is <dir>/allowed, with one model ("other@1") already cached from
// there: the model every case checks is left untouched.
class SourceAccessFault : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteRandomModel(Allowed() / "other", {{"o.bin", 300'000}, {"sub/p.bin", 1'000}});
  }

  fs::path Allowed() const { return dir_.Path() / "allowed"; }
  fs::path CacheRoot() const { return dir_.Path() / "cache"; }

  void StartAgent(std::vector<std::string> network_allow, std::vector<std::string> network_resolve = {}) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> agent = AgentProcess::Start(
        {.directory = dir_.Path(),
         .node_name = "fault-agent",
         .cache_root = CacheRoot(),
         .socket = dir_.Path() / "run" / "agent.sock",
         .network_allow = std::move(network_allow),
         .network_resolve = std::move(network_resolve),
         .file_sources = {Allowed()},
         .extra_yaml = "fill: {stallTimeout: 10s}\n"});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    CtlResult other = Fetch("other", "1", "file://" + (Allowed() / "other").string());
    ASSERT_EQ(other.exit_code, 0) << other.err << agent_->Log();
    others_before_ = testing::HashPublishedModels(CacheRoot());
    ASSERT_FALSE(others_before_.empty());
  }

  CtlResult Fetch(const std::string& name, const std::string& version, const std::string& source,
                  std::vector<std::string> environment = {}, std::vector<std::string> more_args = {}) {
    std::vector<std::string> args = {"fetch", "--model", name, "--version", version, "--source", source,
                                     "--timeout", "90s"};
    args.insert(args.end(), more_args.begin(), more_args.end());
    return testing::RunCtl({.directory = dir_.Path(),
                            .socket = dir_.Path() / "run" / "agent.sock",
                            .environment = std::move(environment)},
                           args);
  }

  // The fetch failed with `code` and a message holding every one of `words`; name@version is
  // not under models/, nothing there is partial, and the other model is what it was.
  void ExpectRefused(const CtlResult& result, const std::string& name, const std::string& code,
                     const std::vector<std::string>& words) {
    EXPECT_EQ(result.exit_code, kExitRequestFailed) << result.out << result.err;
    EXPECT_THAT(result.err, HasSubstr(code + ": ")) << (agent_ ? agent_->Log() : "");
    for (const std::string& word : words) EXPECT_THAT(result.err, HasSubstr(word));
    EXPECT_EQ(result.out, "") << "no path is printed for a refused model";
    EXPECT_FALSE(fs::exists(CacheRoot() / "models" / name)) << "nothing of " << name << " is published";
    EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
    EXPECT_EQ(testing::HashPublishedModels(CacheRoot(), name, "1"), others_before_)
        << "the other model changed";
  }

  testing::TempDir dir_;
  std::unique_ptr<AgentProcess> agent_;
  std::map<std::string, std::string> others_before_;
};

class FaultFileSources : public SourceAccessFault {};
class FaultNetworkSources : public SourceAccessFault {};

TEST_F(FaultFileSources, RootOnlyFileOutsideTheAllowedFoldersIsRefused) {
  StartAgent({});
  const fs::path secret = dir_.Path() / "secret" / "token";
  ASSERT_TRUE(testing::WriteTestFile(secret, "the agent's coordinator token"));
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  if (::geteuid() == 0) ASSERT_EQ(::chown(secret.c_str(), 0, 0), 0);

  for (const fs::path& path : {secret, secret.parent_path()}) {
    CtlResult result = Fetch("stolen", "1", "file://" + path.string());
    ExpectRefused(result, "stolen", "PERMISSION_DENIED", {path.string(), "fileSources"});
  }
}

TEST_F(FaultFileSources, SymlinkToAFileOutsideIsRefusedAsASingleFileSource) {
  StartAgent({});
  const fs::path secret = dir_.Path() / "secret.txt";
  ASSERT_TRUE(testing::WriteTestFile(secret, "do not copy"));
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  std::vector<fs::path> targets = {secret, "../secret.txt"};
  if (fs::exists("/etc/shadow")) targets.push_back("/etc/shadow");
  int i = 0;
  for (const fs::path& target : targets) {
    const fs::path link = Allowed() / ("link-" + std::to_string(++i) + ".bin");
    fs::create_symlink(target, link);
    CtlResult result = Fetch("leak", "1", "file://" + link.string());
    ExpectRefused(result, "leak", "PERMISSION_DENIED", {link.string(), "leads outside", "fileSources"});
  }
}

TEST_F(FaultFileSources, SymlinkToAFileOutsideIsRefusedInADirectorySource) {
  StartAgent({});
  ASSERT_TRUE(testing::WriteTestFile(dir_.Path() / "secret.txt", "do not copy"));
  testing::WriteRandomModel(Allowed() / "m", {{"weights.bin", 200'000}});
  for (const fs::path& target : {fs::path(dir_.Path() / "secret.txt"), fs::path("../../secret.txt"),
                                 fs::path("/etc/shadow")}) {
    fs::remove(Allowed() / "m" / "leak.bin");
    fs::create_symlink(target, Allowed() / "m" / "leak.bin");
    CtlResult result = Fetch("m", "1", "file://" + (Allowed() / "m").string());
    ExpectRefused(result, "m", "PERMISSION_DENIED", {"leak.bin", target.string(), "fileSources"});
  }
}

TEST_F(FaultFileSources, FifoIsRefusedWithoutWaitingForAWriter) {
  StartAgent({});
  const fs::path fifo = Allowed() / "pipe.bin";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  CtlResult result = Fetch("pipe", "1", "file://" + fifo.string());
  ExpectRefused(result, "pipe", "INVALID_ARGUMENT", {fifo.string(), "FIFO"});
}

TEST_F(FaultFileSources, AllowedFolderStillFills) {
  StartAgent({});
  std::vector<v1::ManifestFile> files =
      testing::WriteRandomModel(Allowed() / "good", {{"w.bin", 3'000'000}, {"cfg/c.json", 100}});
  fs::create_symlink("../w.bin", Allowed() / "good" / "cfg" / "same.bin");  // inside: followed
  CtlResult result = Fetch("good", "1", "file://" + (Allowed() / "good").string());
  ASSERT_EQ(result.exit_code, 0) << result.err << agent_->Log();
  EXPECT_THAT(result.out, HasSubstr((CacheRoot() / "models" / "good" / "1").string()));
  std::map<std::string, std::string> published = testing::HashModel(CacheRoot(), "good", "1");
  EXPECT_EQ(published["models/good/1/w.bin"], files[0].sha256());
  EXPECT_EQ(published["models/good/1/cfg/c.json"], files[1].sha256());
  EXPECT_EQ(published["models/good/1/cfg/same.bin"], files[0].sha256());
  EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
  EXPECT_EQ(testing::HashPublishedModels(CacheRoot(), "good", "1"), others_before_);
}

TEST_F(FaultFileSources, LocalFallbackReadsWithTheCallersOwnRights) {
  // MODELCACHE_DISABLE=true: modelcachectl fills --dest itself, as its caller; the agent's
  // fileSources does not apply (the caller could read the file anyway).
  StartAgent({});
  std::vector<v1::ManifestFile> files = testing::WriteRandomModel(dir_.Path() / "mine", {{"w.bin", 5'000}});
  const fs::path dest = dir_.Path() / "local";
  CtlResult result = Fetch("mine", "1", "file://" + (dir_.Path() / "mine").string(),
                           {"MODELCACHE_DISABLE=true"}, {"--dest", dest.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(testing::HashModel(dest, "mine", "1")["models/mine/1/w.bin"], files[0].sha256());
  EXPECT_FALSE(fs::exists(CacheRoot() / "models" / "mine"));
  EXPECT_EQ(testing::HashPublishedModels(CacheRoot()), others_before_);
}

// nginx on 127.0.0.1 serving <dir>/origin: a model "m" (listing and files).
class OriginOnLoopback {
 public:
  explicit OriginOnLoopback(const fs::path& root, std::vector<testing::NginxLocation> locations = {}) {
    files_ = testing::WriteRandomModel(root / "m", {{"weights.bin", 400'000}});
    EXPECT_TRUE(testing::WriteTestFile(root / "m" / "modelcache.json", testing::HttpListingJson(files_)));
    testing::NginxOptions options;
    options.root = root.string();
    options.locations = std::move(locations);
    absl::StatusOr<std::unique_ptr<testing::NginxServer>> server = testing::NginxServer::Start(options);
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = *std::move(server);
  }
  bool Started() const { return server_ != nullptr; }
  testing::NginxServer& Server() { return *server_; }
  const std::vector<v1::ManifestFile>& Files() const { return files_; }

 private:
  std::vector<v1::ManifestFile> files_;
  std::unique_ptr<testing::NginxServer> server_;
};

TEST_F(FaultNetworkSources, LoopbackOriginIsRefusedByDefault) {
  OriginOnLoopback origin(dir_.Path() / "origin");
  ASSERT_TRUE(origin.Started());
  StartAgent({});  // no network.allow
  for (const std::string& path : {"/m/", "/m/weights.bin"}) {
    CtlResult result = Fetch("m", "1", origin.Server().BaseUrl() + path);
    ExpectRefused(result, "m", "PERMISSION_DENIED",
                  {"host 127.0.0.1", "127.0.0.0/8 (loopback)", "network.allow", "127.0.0.1/32"});
  }
  EXPECT_TRUE(origin.Server().AccessLog().empty()) << "the origin was never contacted";
}

TEST_F(FaultNetworkSources, LoopbackOriginIsAllowedByConfig) {
  OriginOnLoopback origin(dir_.Path() / "origin");
  ASSERT_TRUE(origin.Started());
  StartAgent(testing::LoopbackOrigins());
  CtlResult result = Fetch("m", "1", origin.Server().BaseUrl() + "/m/");
  ASSERT_EQ(result.exit_code, 0) << result.err << agent_->Log();
  EXPECT_EQ(testing::HashModel(CacheRoot(), "m", "1")["models/m/1/weights.bin"], origin.Files()[0].sha256());
  EXPECT_EQ(testing::FindPartialModel(CacheRoot()), "");
  EXPECT_EQ(testing::HashPublishedModels(CacheRoot(), "m", "1"), others_before_);
}

TEST_F(FaultNetworkSources, NameThatResolvesToTheMetadataAddressIsRefused) {
  // network.resolve pins the name for this agent only (curl's resolve override), as a DNS
  // answer would; nothing on the machine changes.
  const uint16_t port = testing::FreeTcpPort();
  StartAgent(testing::LoopbackOrigins(), {absl::StrCat("metadata.test:", port, ":", kMetadataAddress)});
  for (const std::string& path : {"/latest/", "/latest/meta-data/iam.json"}) {
    CtlResult result = Fetch("meta", "1", absl::StrCat("http://metadata.test:", port, path));
    ExpectRefused(result, "meta", "PERMISSION_DENIED",
                  {"host metadata.test", std::string(kMetadataAddress), "link-local", "network.allow"});
  }
}

TEST_F(FaultNetworkSources, RedirectToTheMetadataAddressIsRefusedAtTheRedirect) {
  const std::string metadata_url = absl::StrCat("http://", kMetadataAddress, "/latest/meta-data/");
  OriginOnLoopback origin(
      dir_.Path() / "origin",
      {// A single file whose HEAD (listing) is redirected.
       {.prefix = "/redirect/", .extra_directives = "return 302 " + metadata_url + ";"},
       // A directory whose listing is served but whose file is redirected (the range GETs).
       {.prefix = "= /m/weights.bin", .extra_directives = "return 302 " + metadata_url + "w.bin;"}});
  ASSERT_TRUE(origin.Started());
  StartAgent(testing::LoopbackOrigins());

  CtlResult single = Fetch("r", "1", origin.Server().BaseUrl() + "/redirect/model.bin");
  ExpectRefused(single, "r", "PERMISSION_DENIED",
                {"host " + std::string(kMetadataAddress), "network.allow", metadata_url});
  CtlResult directory = Fetch("m", "1", origin.Server().BaseUrl() + "/m/");
  ExpectRefused(directory, "m", "PERMISSION_DENIED",
                {"/m/weights.bin", "host " + std::string(kMetadataAddress), "network.allow", metadata_url});
  // The allowed origin was asked and answered with the redirect: the refusal came at the hop.
  bool redirected = false;
  for (const testing::AccessRecord& record : origin.Server().AccessLog()) {
    if (record.uri == "/m/weights.bin" && record.status == 302) redirected = true;
  }
  EXPECT_TRUE(redirected);
}

}  // namespace
}  // namespace modelcache
