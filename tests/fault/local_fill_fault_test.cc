// Fault cases of issue 11 about modelcachectl's own downloads (MODELCACHE_DISABLE=true, or the
// agent unreachable with --fallback): five of them into one --dest at once failed three times
// with confusing errors, and the origin sent the model twice. They take the agent's fill lock
// now: one fills, the others wait and find the model ready. Each case checks the three
// promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/testing/cache_volume.h"
#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CtlResult;

class FaultLocalFills : public testing::FaultCase {};

TEST_F(FaultLocalFills, ConcurrentLocalFetchesIntoOneFolderFillTheModelOnce) {
  const fs::path www = dir_.Path() / "www";
  std::vector<v1::ManifestFile> files = testing::WriteRandomModel(
      www / "m", {{"config.json", 4000},
                  {"weights/a.bin", 2u << 20},
                  {"weights/b.bin", 2u << 20},
                  {"weights/c.bin", (2u << 20) + 7}});
  ASSERT_TRUE(testing::WriteTestFile(www / "m" / "modelcache.json", testing::HttpListingJson(files)));
  uint64_t model_bytes = 0;
  for (const v1::ManifestFile& file : files) model_bytes += file.size();
  // About a second per file, so that the five fetches overlap.
  absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin = testing::NginxServer::Start(
      {.root = www.string(), .locations = {{.prefix = "/m/", .extra_directives = "limit_rate 1m;"}}});
  ASSERT_TRUE(origin.ok()) << origin.status();
  const std::string source = (*origin)->BaseUrl() + "/m/";

  // The cache folder of the case (with its bystander) is the fetches' --dest; no agent runs.
  constexpr int kFetches = 5;
  std::vector<std::unique_ptr<testing::CtlProcess>> fetches;
  for (int i = 0; i < kFetches; ++i) {
    fetches.push_back(testing::CtlProcess::Start(
        Ctl({"MODELCACHE_DISABLE=true"}), {"fetch", "--model", "m", "--version", "v1", "--source",
                                           source, "--dest", cache_root_.string()}));
    ASSERT_NE(fetches.back(), nullptr);
  }
  const fs::path published = cache_root_ / "models" / "m" / "v1";
  for (int i = 0; i < kFetches; ++i) {
    CtlResult result = fetches[i]->Wait();
    // Promise 1 (here: success): every fetch exits 0 with the model's path.
    EXPECT_EQ(result.exit_code, 0) << "fetch " << i << ": " << result.err;
    EXPECT_EQ(result.out, published.string() + "\n") << "fetch " << i << ": " << result.err;
  }
  // The origin sent each byte of the model once.
  auto served = [&] {
    uint64_t bytes = 0;
    for (const testing::AccessRecord& record : (*origin)->AccessLog()) {
      if (record.uri.rfind("/m/", 0) == 0 && record.uri != "/m/modelcache.json") bytes += record.bytes;
    }
    return bytes;
  };
  ASSERT_TRUE(testing::PollUntil([&] { return served() >= model_bytes; }, std::chrono::seconds(10)));
  EXPECT_EQ(served(), model_bytes) << "the origin sent the model more than once";
  // Promises 2 and 3: the model is complete, the bystander in the same folder untouched, and
  // no lock or staging is left.
  ExpectNothingPartialAndBystanderUntouched();
  std::map<std::string, std::string> hashes = testing::HashModel(cache_root_, "m", "v1");
  for (const v1::ManifestFile& file : files) {
    EXPECT_EQ(hashes["models/m/v1/" + file.path()], file.sha256()) << file.path();
  }
  EXPECT_FALSE(fs::exists(cache_root_ / "staging" / "m@v1"));
  EXPECT_FALSE(fs::exists(cache_root_ / "locks" / "m@v1.lock"));
}

}  // namespace
}  // namespace modelcache
