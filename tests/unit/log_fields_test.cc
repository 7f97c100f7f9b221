#include "common/log_fields.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/safe_text.h"

namespace modelcache {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(LogFields, PlainValuesAreWrittenBare) {
  LogFields fields;
  fields.Add("model", "llama-3").Add("version", "v2").Add("bytes", uint64_t{42}).Add("delta", -3);
  EXPECT_EQ(fields.Text(), "model=llama-3 version=v2 bytes=42 delta=-3");
}

TEST(LogFields, ValuesWithSpacesQuotesOrNothingAreQuotedAndEscaped) {
  LogFields fields;
  fields.Add("error", "say \"hi\"\nnow").Add("empty", "").Add("path", "a=b");
  EXPECT_EQ(fields.Text(), R"(error="say \"hi\"\nnow" empty="" path="a=b")");
}

TEST(LogFields, StatusIsWrittenWithItsCode) {
  LogFields fields;
  fields.Add("error", absl::NotFoundError("no such model"));
  EXPECT_EQ(fields.Text(), R"(error="NOT_FOUND: no such model")");
}

TEST(LogFields, MillisAreRoundedWholeMilliseconds) {
  LogFields fields;
  fields.AddMillis("duration_ms", 1.2346);
  EXPECT_EQ(fields.Text(), "duration_ms=1235");
}

TEST(LogFields, FormatsIntoALogMessage) {
  EXPECT_EQ(fmt::format("fill finished {}", LogFields().Add("model", "m")),
            "fill finished model=m");
}

TEST(LogFields, BytesThatAreNotUtf8AreEscapedAndReadBack) {
  // What a manifest with garbage bytes puts into an error message.
  const std::string raw("bad \xff\xfe manifest \x01 caf\xc3\xa9");
  LogFields fields;
  fields.Add("error", raw);
  EXPECT_EQ(fields.Text(), R"(error="bad \xff\xfe manifest \x01 caf)" "\xc3\xa9" R"(")");
  for (size_t pos = 0; pos < fields.Text().size();) {
    size_t length = Utf8SequenceLength(fields.Text(), pos);
    ASSERT_GT(length, 0u) << "not UTF-8 at byte " << pos << ": " << fields.Text();
    pos += length;
  }
  SplitLogMessage split = SplitLogFields(fmt::format("scan problem {}", fields));
  EXPECT_THAT(split.fields, ElementsAre(Pair("error", raw)));
}

TEST(LogFields, AHugeValueIsCutWithAMarker) {
  const std::string uri = "http://origin/" + std::string(1 << 20, 'a');
  LogFields fields;
  fields.Add("source", uri).Add("model", "m");
  EXPECT_LT(fields.Text().size(), kMaxLoggedValueBytes + 100);
  EXPECT_THAT(fields.Text(), ::testing::HasSubstr("...[cut: " + std::to_string(uri.size()) +
                                                  " bytes in all]"));
  EXPECT_THAT(fields.Text(), ::testing::EndsWith(" model=m"));
}

TEST(SplitLogFields, SplitsTheTextFromTheTrailingFields) {
  std::string line =
      fmt::format("fill failed {}", LogFields().Add("model", "m").Add("error", "a \"b\" c"));
  SplitLogMessage split = SplitLogFields(line);
  EXPECT_EQ(split.text, "fill failed");
  EXPECT_THAT(split.fields, ElementsAre(Pair("model", "m"), Pair("error", "a \"b\" c")));
}

TEST(SplitLogFields, AMessageWithoutAWellFormedTailIsAllText) {
  for (std::string_view message :
       {"plain words", "x=1 and then words", "broken=\"unclosed", "trailing x=1 ", "A=1"}) {
    SplitLogMessage split = SplitLogFields(message);
    EXPECT_EQ(split.text, message);
    EXPECT_TRUE(split.fields.empty()) << message;
  }
}

TEST(SplitLogFields, OnlyTheLongestTailOfFieldsCounts) {
  SplitLogMessage split = SplitLogFields("ratio a=b is x=1 y=2");
  EXPECT_EQ(split.text, "ratio a=b is");
  EXPECT_THAT(split.fields, ElementsAre(Pair("x", "1"), Pair("y", "2")));
}

TEST(SplitLogFields, AMessageOfOnlyFieldsHasNoText) {
  SplitLogMessage split = SplitLogFields("a=1");
  EXPECT_EQ(split.text, "");
  EXPECT_THAT(split.fields, ElementsAre(Pair("a", "1")));
}

}  // namespace
}  // namespace modelcache
