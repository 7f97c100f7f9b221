#include "common/logging.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iomanip>
#include <regex>
#include <sstream>

#include "common/fs.h"
#include "common/log_fields.h"
#include "common/safe_text.h"
#include "spdlog/spdlog.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

// Runs `body` with stderr redirected to a file and returns what was written.
template <typename Body>
std::string CaptureStderr(Body body) {
  testing::TempDir dir;
  std::filesystem::path file = dir.Path() / "stderr";
  std::fflush(stderr);
  int saved = ::dup(STDERR_FILENO);
  FILE* capture = std::fopen(file.c_str(), "w");
  ::dup2(::fileno(capture), STDERR_FILENO);
  body();
  spdlog::default_logger()->flush();
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::fclose(capture);
  return ReadFileToString(file).value_or("");
}

TEST(Logging, TextLinesHaveUtcTimeLevelComponentAndMessage) {
  std::string output = CaptureStderr([] {
    ASSERT_TRUE(SetUpLogging({.level = "info", .json = false, .component = "agent"}).ok());
    spdlog::debug("not shown");
    spdlog::info("fill done model={} bytes={}", "m@1", 42);
  });
  std::smatch match;
  ASSERT_TRUE(std::regex_match(
      output, match,
      std::regex(
          R"((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d{3}Z info agent fill done model=m@1 bytes=42\n)")))
      << output;
  std::tm parsed{};
  std::istringstream(match[1].str()) >> std::get_time(&parsed, "%Y-%m-%dT%H:%M:%S");
  EXPECT_LT(std::abs(std::difftime(::timegm(&parsed), std::time(nullptr))), 120.0)
      << "timestamp is not UTC now: " << output;
}

TEST(Logging, JsonLinesAreValidJsonEvenWithQuotesAndNewlines) {
  std::string output = CaptureStderr([] {
    ASSERT_TRUE(SetUpLogging({.level = "debug", .json = true, .component = "coordinator"}).ok());
    spdlog::warn("say \"hi\"\nbye\\");
  });
  ASSERT_FALSE(output.empty());
  EXPECT_EQ(output.find('\n'), output.size() - 1) << "one line per event: " << output;
  google::protobuf::Struct object;
  auto status = google::protobuf::util::JsonStringToMessage(output, &object);
  ASSERT_TRUE(status.ok()) << status.ToString() << ": " << output;
  const auto& fields = object.fields();
  EXPECT_EQ(fields.at("msg").string_value(), "say \"hi\"\nbye\\");
  EXPECT_EQ(fields.at("level").string_value(), "warning");
  EXPECT_EQ(fields.at("component").string_value(), "coordinator");
  EXPECT_TRUE(std::regex_match(fields.at("ts").string_value(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}

TEST(Logging, UnknownLevelIsRejected) {
  LogOptions options;
  options.level = "verbose";
  absl::Status status = SetUpLogging(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("verbose"), std::string::npos);
}

TEST(Logging, JsonLinesCarryTheMessageFieldsAsMembers) {
  std::string output = CaptureStderr([] {
    ASSERT_TRUE(SetUpLogging({.level = "info", .json = true, .component = "agent"}).ok());
    spdlog::warn("fill failed {}", LogFields()
                                       .Add("model", "llama")
                                       .Add("bytes", uint64_t{1024})
                                       .Add("error", absl::UnavailableError("origin said \"503\""))
                                       .Add("msg", "clash"));
  });
  google::protobuf::Struct object;
  auto status = google::protobuf::util::JsonStringToMessage(output, &object);
  ASSERT_TRUE(status.ok()) << status.ToString() << ": " << output;
  const auto& fields = object.fields();
  EXPECT_EQ(fields.at("msg").string_value(), "fill failed");
  EXPECT_EQ(fields.at("model").string_value(), "llama");
  EXPECT_EQ(fields.at("bytes").number_value(), 1024);
  EXPECT_EQ(fields.at("error").string_value(), "UNAVAILABLE: origin said \"503\"");
  EXPECT_EQ(fields.at("field_msg").string_value(), "clash");
  EXPECT_EQ(fields.at("component").string_value(), "agent");
}

bool IsUtf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    size_t length = Utf8SequenceLength(text, pos);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

TEST(Logging, JsonLinesStayValidJsonWithBytesThatAreNotUtf8) {
  // Raw bytes of a bad manifest, in the message text and in a field, the field written both
  // through LogFields and raw.
  const std::string raw("manifest \xff\xc0\xaf end \xe2\x82\xac");
  std::string output = CaptureStderr([&] {
    ASSERT_TRUE(SetUpLogging({.level = "info", .json = true, .component = "agent"}).ok());
    spdlog::warn("volume scan problem {} {}", raw, LogFields().Add("error", raw).Add("next", "x"));
  });
  ASSERT_TRUE(IsUtf8(output)) << output;
  EXPECT_EQ(output.find('\n'), output.size() - 1) << output;
  google::protobuf::Struct object;
  auto status = google::protobuf::util::JsonStringToMessage(output, &object);
  ASSERT_TRUE(status.ok()) << status.ToString() << ": " << output;
  const auto& fields = object.fields();
  EXPECT_EQ(fields.at("error").string_value(), "manifest \\xff\\xc0\\xaf end \xe2\x82\xac");
  EXPECT_EQ(fields.at("next").string_value(), "x");
  EXPECT_NE(fields.at("msg").string_value().find("\\xff"), std::string::npos);
}

TEST(Logging, TextLinesEscapeBytesThatAreNotUtf8AndStayOneLine) {
  std::string output = CaptureStderr([] {
    ASSERT_TRUE(SetUpLogging({.level = "info", .json = false, .component = "agent"}).ok());
    spdlog::info("raw {} and\na second line", std::string("\xff\x1b[31m", 6));
  });
  ASSERT_TRUE(IsUtf8(output)) << output;
  EXPECT_EQ(output.find('\n'), output.size() - 1) << output;
  EXPECT_NE(output.find("raw \\xff\\x1b[31m and\\na second line"), std::string::npos) << output;
}

TEST(Logging, TextLinesKeepTheFieldsAsWritten) {
  std::string output = CaptureStderr([] {
    ASSERT_TRUE(SetUpLogging({.level = "info", .json = false, .component = "agent"}).ok());
    spdlog::info("purge done {}", LogFields().Add("model", "m").Add("reason", "unused: 3d old"));
  });
  EXPECT_NE(output.find(" info agent purge done model=m reason=\"unused: 3d old\"\n"),
            std::string::npos)
      << output;
}

TEST(Logging, EnvironmentSetsLevelAndJsonOnlyWhenGiven) {
  std::string level = "info";
  bool json = false;
  ASSERT_TRUE(ApplyLogEnvironment("", "", level, json).ok());
  EXPECT_EQ(level, "info");
  EXPECT_FALSE(json);
  ASSERT_TRUE(ApplyLogEnvironment("debug", "true", level, json).ok());
  EXPECT_EQ(level, "debug");
  EXPECT_TRUE(json);
  ASSERT_TRUE(ApplyLogEnvironment("", "off", level, json).ok());
  EXPECT_FALSE(json);
  absl::Status bad = ApplyLogEnvironment("", "sure", level, json);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.message()).find("MODELCACHE_LOG_JSON"), std::string::npos);
}

}  // namespace
}  // namespace modelcache
