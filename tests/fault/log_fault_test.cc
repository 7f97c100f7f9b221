// Fault cases of issue 11 about the log: raw bytes of a bad manifest reached it, and with
// JSON logs (log.json: true) such a line was not valid JSON (RFC 8259 wants UTF-8), so a log
// pipeline dropped the one line that said what went wrong. Each case checks the three
// promises.
#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "common/safe_text.h"
#include "tests/testing/fault_case.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CtlResult;

class FaultLogs : public testing::FaultCase {};

// Offset of the first byte of `text` that is not part of valid UTF-8; nullopt when all is.
std::optional<size_t> FirstNonUtf8Byte(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = Utf8SequenceLength(text, pos);
    if (length == 0) return pos;
    pos += length;
  }
  return std::nullopt;
}

TEST_F(FaultLogs, AGarbageManifestAtStartIsLoggedAsValidJson) {
  // A manifest with bytes that are not UTF-8, an escape sequence for the terminal and a NUL.
  const fs::path garbage = cache_root_ / "models" / "garbage" / "v1";
  ASSERT_TRUE(testing::WriteTestFile(garbage / "weights.bin", "not a model"));
  ASSERT_TRUE(testing::WriteTestFile(
      garbage / ".modelcache-manifest.json",
      std::string("{\"name\": \"garb\xff\xfe" "age\x1b[31m\", \"version\": \"v1\x00\xc0\xaf\"}", 46)));
  ASSERT_NO_FATAL_FAILURE(StartAgent({.log_json = true}));

  // Every line of the log is one valid JSON object.
  std::istringstream log(agent_->Log());
  int lines = 0;
  bool reported = false;
  for (std::string line; std::getline(log, line); ++lines) {
    std::optional<size_t> bad = FirstNonUtf8Byte(line);
    EXPECT_FALSE(bad.has_value()) << "byte " << *bad << " of line " << lines << " is not UTF-8";
    google::protobuf::Struct object;
    auto parsed = google::protobuf::util::JsonStringToMessage(line, &object);
    ASSERT_TRUE(parsed.ok()) << parsed.ToString() << ": line " << lines;
    const auto& fields = object.fields();
    if (fields.count("msg") != 0 && fields.at("msg").string_value() == "volume scan problem") {
      reported = true;
      // Promise 1: what (the manifest, its bytes readable as \xNN) and what happens next.
      EXPECT_EQ(fields.at("path").string_value(), "models/garbage/v1");
      EXPECT_THAT(fields.at("error").string_value(), HasSubstr(".modelcache-manifest.json"));
      EXPECT_THAT(fields.at("error").string_value(), HasSubstr("\\xff\\xfe"));
      EXPECT_EQ(fields.at("next").string_value(), "moved to trash");
    }
  }
  EXPECT_GT(lines, 2);
  EXPECT_TRUE(reported) << agent_->Log();
  // Promises 2 and 3: the garbage left models/, the bystander is served as it was.
  EXPECT_FALSE(fs::exists(garbage));
  ExpectNothingPartialAndBystanderUntouched();
  CtlResult hit = Fetch("bystander", "http://bystander.invalid/bystander/");
  EXPECT_EQ(hit.exit_code, 0) << hit.err;
  EXPECT_THAT(hit.out, HasSubstr("models/bystander/v1"));
}

}  // namespace
}  // namespace modelcache
