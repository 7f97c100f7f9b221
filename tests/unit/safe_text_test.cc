#include "common/safe_text.h"

#include <gtest/gtest.h>

#include <string>

namespace modelcache {
namespace {

TEST(SafeText, Utf8SequenceLengthAcceptsOnlyWellFormedSequences) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xc3\xa9", 0), 2u);          // é
  EXPECT_EQ(Utf8SequenceLength("\xe2\x82\xac", 0), 3u);      // €
  EXPECT_EQ(Utf8SequenceLength("\xf0\x9f\x98\x80", 0), 4u);  // 😀
  EXPECT_EQ(Utf8SequenceLength("\xff", 0), 0u);
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0u);              // a lone continuation byte
  EXPECT_EQ(Utf8SequenceLength("\xc0\xaf", 0), 0u);          // overlong '/'
  EXPECT_EQ(Utf8SequenceLength("\xe0\x80\xaf", 0), 0u);      // overlong
  EXPECT_EQ(Utf8SequenceLength("\xed\xa0\x80", 0), 0u);      // a surrogate
  EXPECT_EQ(Utf8SequenceLength("\xf4\x90\x80\x80", 0), 0u);  // above U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xe2\x82", 0), 0u);          // cut short
}

TEST(SafeText, EscapeUnsafeBytesWritesRawBytesAsHexAndKeepsUtf8) {
  EXPECT_EQ(EscapeUnsafeBytes("plain text"), "plain text");
  EXPECT_EQ(EscapeUnsafeBytes("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(EscapeUnsafeBytes(std::string("a\xff\xfe" "b\x01\x7f", 6)), "a\\xff\\xfeb\\x01\\x7f");
  EXPECT_EQ(EscapeUnsafeBytes("line\nnext\ttab\r"), "line\\nnext\\ttab\\r");
  EXPECT_EQ(EscapeUnsafeBytes(std::string("nul\0byte", 8)), "nul\\x00byte");
  EXPECT_EQ(EscapeUnsafeBytes("back\\slash"), "back\\\\slash");
  EXPECT_EQ(EscapeUnsafeBytes("back\\slash", Backslash::kKeep), "back\\slash");
}

TEST(SafeText, CutTextKeepsShortTextAndMarksWhatItCut) {
  EXPECT_EQ(CutText("short", 10), "short");
  std::string long_text(100, 'x');
  EXPECT_EQ(CutText(long_text, 10), std::string(10, 'x') + "...[cut: 100 bytes in all]");
}

TEST(SafeText, CutTextNeverSplitsACharacter) {
  // "é" is two bytes: a cut after 4 bytes would fall inside the third one.
  std::string text = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
  std::string cut = CutText(text, 5);
  EXPECT_EQ(cut, "\xc3\xa9\xc3\xa9...[cut: 8 bytes in all]");
}

TEST(SafeText, CutTextMiddleKeepsStartAndEnd) {
  std::string text = "model x@1: " + std::string(10'000, 'u') + ": NOT_FOUND at the end";
  std::string cut = CutTextMiddle(text, 100);
  EXPECT_LT(cut.size(), 160u);
  EXPECT_EQ(cut.rfind("model x@1: ", 0), 0u) << cut;
  EXPECT_NE(cut.find("NOT_FOUND at the end"), std::string::npos) << cut;
  EXPECT_NE(cut.find("[cut: " + std::to_string(text.size()) + " bytes in all]"), std::string::npos);
  EXPECT_EQ(CutTextMiddle("short", 100), "short");
}

}  // namespace
}  // namespace modelcache
