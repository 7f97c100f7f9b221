// Fault cases (issue #11, 4): origins that plain tools survive. An nginx that answers some
// range requests (or all of them) with HTTP 200 and the whole file, as a CDN edge or a proxy
// that drops Range does, and an S3 prefix with a space and non-ASCII characters, as the AWS
// CLI takes it. The real agent and modelcachectl fetch from them: the model arrives byte for
// byte as `curl -o` would get it, nothing partial is visible under models/, and the model
// filled before is untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "tests/testing/agent_process.h"
#include "tests/testing/source_access.h"
#include "tests/testing/cache_volume.h"
#include "tests/testing/http_get.h"
#include "tests/testing/modelcachectl.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/random_model.h"
#include "tests/testing/s3rver_server.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FaultOrigins : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_ = dir_.Path() / "origin";
    keeper_files_ = WriteModel("keeper", {{"config.json", 1500}, {"w.bin", 300'000}});
    // The model of the range cases: two files of many chunks (256 KiB each) and a small one.
    model_files_ = WriteModel("model", {{"weights/a.bin", (6 << 20) + 1234},
                                        {"weights/b.bin", (1 << 20) + 3},
                                        {"config.json", 700}});
    // The same files behind two misbehaving locations.
    fs::create_directory_symlink("model", origin_ / "stray");
    fs::create_directory_symlink("model", origin_ / "norange");
    testing::NginxOptions options;
    options.root = origin_.string();
    // Every 5th request on each connection gets the whole file, as from a CDN edge.
    options.locations.push_back({.prefix = "/stray/", .whole_file_every = 5});
    options.locations.push_back({.prefix = "/norange/", .max_ranges = 0});
    auto nginx = testing::NginxServer::Start(options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
  }

  std::vector<v1::ManifestFile> WriteModel(const std::string& name,
                                           const std::vector<testing::ModelFileSpec>& specs) {
    auto files = testing::WriteRandomModel(origin_ / name, specs);
    EXPECT_TRUE(testing::WriteTestFile(origin_ / name / "modelcache.json", testing::HttpListingJson(files)));
    return files;
  }

  // The agent fills in chunks of 256 KiB, four at a time, so a file of 6 MiB takes 25 range
  // requests; `extra_yaml` adds keys. Then the keeper model is filled and hashed.
  void StartAgent(const std::string& extra_yaml = "", std::vector<std::string> environment = {}) {
    metrics_port_ = testing::FreeTcpPort();
    auto agent = testing::AgentProcess::Start(
        {.directory = dir_.Path(),
         .cache_root = dir_.Path() / "cache",
         .socket = dir_.Path() / "run" / "agent.sock",
         .metrics_address = absl::StrCat("127.0.0.1:", metrics_port_),
         .network_allow = testing::LoopbackOrigins(),  // nginx and s3rver listen on 127.0.0.1
         .extra_yaml = "fill: {chunkSize: 256Ki, concurrency: 4}\n" + extra_yaml,
         .environment = std::move(environment)});
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    testing::CtlResult keeper = Fetch("keeper", nginx_->BaseUrl() + "/keeper/");
    ASSERT_EQ(keeper.exit_code, 0) << keeper.err;
    before_ = testing::HashPublishedModels(agent_->CacheRoot());
    ASSERT_EQ(before_.size(), keeper_files_.size() + 1) << "the keeper's files and its manifest";
  }

  testing::CtlResult Fetch(const std::string& name, const std::string& source) {
    return testing::RunCtl({.directory = dir_.Path(), .socket = agent_->Socket()},
                           {"fetch", "--model", name, "--version", "v1", "--source", source});
  }

  // `ready_dir` (what fetch printed) holds exactly `files`, byte for byte.
  static void ExpectModelAt(const std::string& ready_dir, const std::vector<v1::ManifestFile>& files) {
    fs::path dir = ready_dir.substr(0, ready_dir.find_last_not_of("\n ") + 1);
    for (const v1::ManifestFile& file : files) {
      absl::StatusOr<std::string> digest = Sha256OfFile(dir / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << file.path();
    }
  }

  // Nothing partial under models/; the keeper model is byte-for-byte what it was.
  void ExpectVolumePromisesKept(const std::string& new_model) {
    EXPECT_EQ(testing::FindPartialModel(agent_->CacheRoot()), "");
    EXPECT_EQ(testing::HashPublishedModels(agent_->CacheRoot(), new_model, "v1"), before_);
  }

  std::string Metrics() const {
    return testing::HttpGet(absl::StrCat("http://127.0.0.1:", metrics_port_, "/metrics")).body;
  }

  testing::TempDir dir_;
  fs::path origin_;
  std::vector<v1::ManifestFile> keeper_files_;
  std::vector<v1::ManifestFile> model_files_;
  std::unique_ptr<testing::NginxServer> nginx_;
  std::unique_ptr<testing::AgentProcess> agent_;
  uint16_t metrics_port_ = 0;
  std::map<std::string, std::string> before_;
};

// Before: one 200 among dozens of 206s failed the fill with "origin ignores Range requests"
// and discarded the staging.
TEST_F(FaultOrigins, AStrayWholeFileAnswerAmongManyRangesStillFillsByteExact) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());

  testing::CtlResult fetched = Fetch("stray", nginx_->BaseUrl() + "/stray/");

  ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent_->Log();
  ExpectModelAt(fetched.out, model_files_);
  int whole_file_answers = 0;
  for (const testing::AccessRecord& record : nginx_->AccessLog()) {
    if (!record.uri.starts_with("/stray/weights/")) continue;
    EXPECT_NE(record.range, "") << "fetched as ranges, never streamed";
    whole_file_answers += record.status == 200;
  }
  EXPECT_GT(whole_file_answers, 1);
  EXPECT_THAT(Metrics(), HasSubstr(absl::StrCat("modelcache_fill_ranges_ignored_total{scheme=\"http\"} ",
                                                whole_file_answers)));
  EXPECT_THAT(Metrics(), HasSubstr("modelcache_fill_whole_file_streams_total{scheme=\"http\"} 0"));
  ExpectVolumePromisesKept("stray");
}

// An origin that never honours Range (as `max_ranges 0`, or a proxy that strips it): each
// file is fetched as one stream, as curl -o would.
TEST_F(FaultOrigins, AnOriginThatAlwaysIgnoresRangeIsFetchedAsOneStreamPerFile) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());

  testing::CtlResult fetched = Fetch("norange", nginx_->BaseUrl() + "/norange/");

  ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent_->Log();
  ExpectModelAt(fetched.out, model_files_);
  std::map<std::string, int> streams;
  for (const testing::AccessRecord& record : nginx_->AccessLog()) {
    if (!record.uri.starts_with("/norange/") || record.uri == "/norange/modelcache.json") continue;
    EXPECT_EQ(record.status, 200) << record.uri;
    streams[record.uri] += record.range.empty();
  }
  EXPECT_EQ(streams["/norange/weights/a.bin"], 1);
  EXPECT_EQ(streams["/norange/weights/b.bin"], 1);
  EXPECT_THAT(agent_->Log(), HasSubstr("origin ignores range requests: fetching the file as one stream"));
  ExpectVolumePromisesKept("norange");
}

// `s3://models/llama 3/v1 ü/` as the AWS CLI takes it. Before: refused ("contains a space or
// control character"); written with %20 it listed the literal characters "%20". (The
// signatures of such requests are checked against the independent SigV4 reference in
// tests/integration/s3_source_test.cc; s3rver does not check them.)
TEST_F(FaultOrigins, AnS3PrefixWithASpaceAndUtf8IsFetchedAsWritten) {
  auto s3 = testing::S3rverServer::Start("models");
  ASSERT_TRUE(s3.ok()) << s3.status();
  const std::string prefix = "llama 3/v1 \u00fc/";
  const std::map<std::string, std::string> objects = {
      {"config.json", "{\"name\": \"llama 3\"}"},
      {"\u6a21\u578b/weights+1=2.bin", std::string(700'000, 'w') + "end"},
      {"tokenizer model.json", "{\"vocab\": 3}"}};
  for (const auto& [path, body] : objects) {
    ASSERT_TRUE((*s3)->PutObject("models", prefix + path, body).ok()) << path;
  }
  // A sibling prefix: not part of the model.
  ASSERT_TRUE((*s3)->PutObject("models", "llama 3/v1 \u00fcber/other.bin", "other").ok());
  ASSERT_NO_FATAL_FAILURE(StartAgent(
      absl::StrCat("s3: {endpoint: \"", (*s3)->Endpoint(), "\", pathStyle: true}\n"),
      {"AWS_ACCESS_KEY_ID=" + std::string(testing::S3rverServer::kAccessKeyId),
       "AWS_SECRET_ACCESS_KEY=" + std::string(testing::S3rverServer::kSecretAccessKey)}));

  testing::CtlResult fetched = Fetch("spaced", "s3://models/" + prefix);

  ASSERT_EQ(fetched.exit_code, 0) << fetched.err << agent_->Log();
  fs::path ready = fetched.out.substr(0, fetched.out.find_last_not_of("\n ") + 1);
  for (const auto& [path, body] : objects) {
    EXPECT_TRUE(testing::ReadTestFile(ready / path) == body) << path;
  }
  EXPECT_FALSE(fs::exists(ready / "other.bin"));
  ExpectVolumePromisesKept("spaced");

  // "%20" is three characters of the key: no such prefix, a clear NOT_FOUND naming it.
  testing::CtlResult literal = Fetch("literal", "s3://models/llama%203/v1%20%C3%BC/");
  EXPECT_NE(literal.exit_code, 0);
  EXPECT_THAT(literal.err, HasSubstr("s3://models/llama%203/v1%20%C3%BC/"));
  EXPECT_FALSE(fs::exists(agent_->CacheRoot() / "models" / "literal"));
  EXPECT_EQ(testing::FindPartialModel(agent_->CacheRoot()), "");
}

}  // namespace
}  // namespace modelcache
