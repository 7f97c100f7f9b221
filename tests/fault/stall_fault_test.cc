// Fault cases of issue 11 about slow origins: one that drips a byte now and then was reported
// as "stalled, no data for 3s" although bytes had come. The error now says what was measured
// against what. Each case checks the three promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/testing/fault_case.h"
#include "tests/testing/raw_http_server.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::CtlResult;
using testing::RawHttpServer;

class FaultStalls : public testing::FaultCase {};

TEST_F(FaultStalls, ADrippingOriginIsStalledAndTheErrorSaysHowManyBytesCame) {
  // One byte every 1.5 s: 2 bytes in a 3 s window, below the 1 byte/s the stall check wants.
  absl::StatusOr<std::unique_ptr<RawHttpServer>> origin =
      RawHttpServer::Start(RawHttpServer::Drip(1 << 20, std::chrono::milliseconds(1500), 1));
  ASSERT_TRUE(origin.ok()) << origin.status();
  ASSERT_NO_FATAL_FAILURE(StartAgent({.extra_yaml = "fill: {stallTimeout: 3s, maxAttempts: 1}\n"}));

  CtlResult result = Fetch("drip", (*origin)->BaseUrl() + "/drip/weights.bin");
  EXPECT_EQ(result.exit_code, 4) << result.err;
  // Promise 1: the file and range, and what was measured against what.
  EXPECT_THAT(result.err, HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_THAT(result.err, HasSubstr("model drip@v1: file weights.bin: GET "));
  EXPECT_THAT(result.err, HasSubstr("stalled (fill.stallTimeout): "));
  EXPECT_THAT(result.err, Not(HasSubstr("no data")));
  std::smatch measured;
  ASSERT_TRUE(std::regex_search(
      result.err, measured,
      std::regex(R"((\d+) bytes in the last 3s, below the minimum of 3 \(1 byte/s\))")))
      << result.err;
  EXPECT_GE(std::stoi(measured[1]), 1) << "the drip's bytes are counted: " << result.err;
  EXPECT_LT(std::stoi(measured[1]), 3) << result.err;
  EXPECT_THAT(result.err, ::testing::ContainsRegex(R"(\([1-9][0-9]* of [0-9]+ bytes received\))"));
  // Promises 2 and 3 (the staging stays for a resume: a stall is the origin's trouble).
  EXPECT_FALSE(fs::exists(cache_root_ / "models" / "drip"));
  ExpectNothingPartialAndBystanderUntouched();
}

}  // namespace
}  // namespace modelcache
