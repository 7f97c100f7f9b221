// Fault cases of issue 11 about modelcachectl's own downloads (MODELCACHE_DISABLE=true, or the
// agent unreachable with --fallback): five of them into one --dest at once failed three times
// with confusing errors, and the origin sent the model twice. They take the agent's fill lock
// now: one fills, the others wait and find the model ready. Each case checks the three
// promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/testing/fault_case.h"
#include "tests/testing/fault_checks.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CtlResult;
using testing::Subprocess;
using testing::SubprocessOptions;

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
  std::vector<SubprocessOptions> options;
  std::vector<std::unique_ptr<Subprocess>> fetches;
  for (int i = 0; i < kFetches; ++i) {
    options.push_back(testing::CtlOptions(
        {"fetch", "--model", "m", "--version", "v1", "--source", source, "--dest",
         cache_root_.string()},
        {"MODELCACHE_DISABLE=true", "MODELCACHE_SOCKET=" + (dir_.Path() / "none.sock").string()},
        dir_.Path(), "local-" + std::to_string(i)));
    absl::StatusOr<std::unique_ptr<Subprocess>> fetch = Subprocess::Start(options.back());
    ASSERT_TRUE(fetch.ok()) << fetch.status();
    fetches.push_back(*std::move(fetch));
  }
  const fs::path published = cache_root_ / "models" / "m" / "v1";
  for (int i = 0; i < kFetches; ++i) {
    CtlResult result = testing::FinishCtl(*fetches[i], options[i], std::chrono::minutes(2));
    // Promise 1 (here: success): every fetch exits 0 with the model's path.
    EXPECT_TRUE(result.exit.Success()) << "fetch " << i << ": " << result.exit.ToString() << "\n"
                                       << result.err;
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
  std::map<std::string, std::string> hashes = testing::HashModels(cache_root_);
  for (const v1::ManifestFile& file : files) {
    EXPECT_EQ(hashes["m/v1/" + file.path()], file.sha256()) << file.path();
  }
  EXPECT_FALSE(fs::exists(cache_root_ / "staging" / "m@v1"));
  EXPECT_FALSE(fs::exists(cache_root_ / "locks" / "m@v1.lock"));
}

}  // namespace
}  // namespace modelcache
