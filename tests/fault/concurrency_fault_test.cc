// Fault cases of issue 11 (§6) about many callers at once: twenty pods fetching one model at
// the same moment get one fill (every byte from the origin once) and the same complete
// folder. The real agent and twenty real modelcachectl processes against nginx on 127.0.0.1.
// Each case checks the three promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/sha256.h"
#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using testing::CtlResult;
using testing::NginxLocation;
using testing::NginxServer;

class FaultConcurrentFetches : public testing::FaultCase {};

TEST_F(FaultConcurrentFetches, TwentyFetchesOfOneModelAtOnceShareOneFill) {
  const fs::path www = dir_.Path() / "www";
  std::vector<v1::ManifestFile> files = testing::WriteRandomModel(
      www / "shared", {{"config.json", 1234}, {"weights/w.bin", (12u << 20) + 5}});
  ASSERT_TRUE(testing::WriteTestFile(www / "shared" / "modelcache.json", testing::HttpListingJson(files)));
  uint64_t model_bytes = 0;
  for (const v1::ManifestFile& file : files) model_bytes += file.size();
  // Slow enough that the fetches overlap the fill (nginx sends the first `limit_rate` bytes at
  // once, the rest at that rate: 1 MiB chunks at 256 KiB/s take 3 s); one that comes after it
  // gets a hit, which is one fill too.
  absl::StatusOr<std::unique_ptr<NginxServer>> origin = NginxServer::Start(
      {.root = www.string(),
       .locations = {NginxLocation{.prefix = "/shared/", .extra_directives = "limit_rate 256k;"}}});
  ASSERT_TRUE(origin.ok()) << origin.status();
  ASSERT_NO_FATAL_FAILURE(StartAgent({.extra_yaml = "fill: {chunkSize: 1Mi}\n"}));
  const std::string source = (*origin)->BaseUrl() + "/shared/";

  std::vector<std::unique_ptr<testing::CtlProcess>> fetches;
  for (int i = 0; i < 20; ++i) {
    fetches.push_back(testing::CtlProcess::Start(
        Ctl(), {"fetch", "--model", "shared", "--version", "v1", "--source", source}));
    ASSERT_NE(fetches.back(), nullptr);
  }
  std::set<std::string> paths;
  for (auto& fetch : fetches) {
    CtlResult result = fetch->Wait();
    EXPECT_EQ(result.exit_code, 0) << result.err << agent_->Log();
    paths.insert(std::string(absl::StripTrailingAsciiWhitespace(result.out)));
  }
  ASSERT_EQ(paths, std::set<std::string>{(cache_root_ / "models" / "shared" / "v1").string()});
  for (const v1::ManifestFile& file : files) {
    EXPECT_EQ(Sha256OfFile(cache_root_ / "models" / "shared" / "v1" / file.path()).value_or(""),
              file.sha256())
        << file.path();
  }

  // One fill: every range of every file served once (nginx logs a request after answering it).
  auto served = [&] {
    uint64_t bytes = 0;
    for (const testing::AccessRecord& record : (*origin)->AccessLog()) {
      if (record.uri.rfind("/shared/", 0) == 0 && record.uri != "/shared/modelcache.json") {
        bytes += record.bytes;
      }
    }
    return bytes;
  };
  EXPECT_TRUE(testing::PollUntil([&] { return served() >= model_bytes; }, std::chrono::seconds(10)));
  EXPECT_EQ(served(), model_bytes);
  std::map<std::pair<std::string, std::string>, int> ranges;
  for (const testing::AccessRecord& record : (*origin)->AccessLog()) {
    if (record.uri != "/shared/modelcache.json") ++ranges[{record.uri, record.range}];
  }
  for (const auto& [range, count] : ranges) {
    EXPECT_EQ(count, 1) << range.first << " " << range.second << " served " << count << " times";
  }
  ExpectNothingPartialAndBystanderUntouched();
}

}  // namespace
}  // namespace modelcache
