// Fault cases of issue 11 (§6) about damage found after publishing: a byte flipped in a
// published model is found by `verify`, which moves the model to quarantine/ (it leaves
// models/ whole, never half), and `repair` fetches only the damaged file again. The real agent
// against nginx on 127.0.0.1. Each case checks the three promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::CtlResult;

class FaultVerify : public testing::FaultCase {};

TEST_F(FaultVerify, AFlippedByteIsFoundAndQuarantinedAndRepairFetchesOnlyThatFile) {
  const fs::path www = dir_.Path() / "www";
  std::vector<v1::ManifestFile> files =
      testing::WriteRandomModel(www / "m", {{"config.json", 4000}, {"weights/w.bin", 3u << 20}});
  ASSERT_TRUE(testing::WriteTestFile(www / "m" / "modelcache.json", testing::HttpListingJson(files)));
  absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
      testing::NginxServer::Start({.root = www.string()});
  ASSERT_TRUE(origin.ok()) << origin.status();
  auto served = [&](const std::string& uri) {
    uint64_t bytes = 0;
    for (const testing::AccessRecord& record : (*origin)->AccessLog()) {
      if (record.uri == uri) bytes += record.bytes;
    }
    return bytes;
  };
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  CtlResult filled = Fetch("m", (*origin)->BaseUrl() + "/m/");
  ASSERT_EQ(filled.exit_code, 0) << filled.err << agent_->Log();
  const fs::path model = cache_root_ / "models" / "m" / "v1";
  ASSERT_TRUE(testing::PollUntil([&] { return served("/m/weights/w.bin") >= files[1].size(); },
                                 std::chrono::seconds(10)));

  CtlResult clean = RunCtl(Ctl(), {"verify"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_THAT(clean.out, HasSubstr("ok"));

  {  // one byte in the middle of the weights
    std::fstream file(model / "weights" / "w.bin", std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(1'000'000);
    char byte = 0;
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x40);
    file.seekp(1'000'000);
    file.write(&byte, 1);
  }
  CtlResult damaged = RunCtl(Ctl(), {"verify"});
  // Promise 1: which file, what is wrong, where it went.
  EXPECT_EQ(damaged.exit_code, 1) << damaged.out << damaged.err;
  EXPECT_THAT(damaged.out, HasSubstr("weights/w.bin"));
  EXPECT_THAT(damaged.out, HasSubstr("sha256 mismatch"));
  EXPECT_THAT(damaged.out, HasSubstr("quarantined to quarantine/m@v1-"));
  // Promise 2: the damaged model left models/ whole; promise 3: the bystander was verified
  // and stays.
  EXPECT_FALSE(fs::exists(model)) << "a damaged model must leave models/";
  EXPECT_FALSE(fs::is_empty(cache_root_ / "quarantine"));
  EXPECT_THAT(RunCtl(Ctl(), {"list"}).out, Not(HasSubstr("m ")));
  ExpectNothingPartialAndBystanderUntouched();

  CtlResult repaired = RunCtl(Ctl(), {"repair", "m@v1"});
  ASSERT_EQ(repaired.exit_code, 0) << repaired.err << agent_->Log();
  EXPECT_THAT(repaired.out, HasSubstr("re-fetched weights/w.bin"));
  for (const v1::ManifestFile& file : files) {
    EXPECT_EQ(Sha256OfFile(model / file.path()).value_or(""), file.sha256()) << file.path();
  }
  // Only the damaged file came from the origin again.
  EXPECT_TRUE(testing::PollUntil([&] { return served("/m/weights/w.bin") >= 2 * files[1].size(); },
                                 std::chrono::seconds(10)));
  EXPECT_EQ(served("/m/weights/w.bin"), 2 * files[1].size());
  EXPECT_EQ(served("/m/config.json"), files[0].size());
  ExpectNothingPartialAndBystanderUntouched();
}

}  // namespace
}  // namespace modelcache
