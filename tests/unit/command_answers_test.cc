#include "agent/coordination/command_answers.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

v1::CommandResult Answer(const std::string& id, int code = 0, uint64_t bytes = 0) {
  v1::CommandResult result;
  result.set_command_id(id);
  result.set_code(code);
  result.set_message(code == 0 ? "" : "model m@1: in use on this node");
  result.set_bytes_freed(bytes);
  return result;
}

TEST(CommandAnswers, AnswersSurviveReopening) {
  testing::TempDir dir;
  const fs::path path = dir.Path() / "state" / "answers.bin";  // folder created by Open
  {
    absl::StatusOr<std::unique_ptr<CommandAnswers>> answers = CommandAnswers::Open(path, 16);
    ASSERT_TRUE(answers.ok()) << answers.status();
    EXPECT_FALSE((*answers)->Find("7").has_value());
    ASSERT_TRUE((*answers)->Record(Answer("7", 0, 1234)).ok());
    ASSERT_TRUE((*answers)->Record(Answer("8", 9)).ok());
  }
  absl::StatusOr<std::unique_ptr<CommandAnswers>> reopened = CommandAnswers::Open(path, 16);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  std::optional<v1::CommandResult> seven = (*reopened)->Find("7");
  ASSERT_TRUE(seven.has_value());
  EXPECT_EQ(seven->bytes_freed(), 1234u);
  std::optional<v1::CommandResult> eight = (*reopened)->Find("8");
  ASSERT_TRUE(eight.has_value());
  EXPECT_EQ(eight->code(), 9);
  EXPECT_EQ(eight->message(), "model m@1: in use on this node");
  EXPECT_FALSE((*reopened)->Find("9").has_value());
}

TEST(CommandAnswers, TornLastRecordIsDroppedAndTheFileStaysUsable) {
  testing::TempDir dir;
  const fs::path path = dir.Path() / "answers.bin";
  {
    auto answers = CommandAnswers::Open(path, 16);
    ASSERT_TRUE(answers.ok());
    ASSERT_TRUE((*answers)->Record(Answer("1", 0, 10)).ok());
    ASSERT_TRUE((*answers)->Record(Answer("2", 0, 20)).ok());
  }
  // A crash in the middle of appending the second record.
  fs::resize_file(path, fs::file_size(path) - 3);
  {
    auto answers = CommandAnswers::Open(path, 16);
    ASSERT_TRUE(answers.ok()) << answers.status();
    EXPECT_TRUE((*answers)->Find("1").has_value());
    EXPECT_FALSE((*answers)->Find("2").has_value());
    ASSERT_TRUE((*answers)->Record(Answer("3", 0, 30)).ok());
  }
  auto answers = CommandAnswers::Open(path, 16);
  ASSERT_TRUE(answers.ok()) << answers.status();
  EXPECT_TRUE((*answers)->Find("1").has_value());
  ASSERT_TRUE((*answers)->Find("3").has_value());
  EXPECT_EQ((*answers)->Find("3")->bytes_freed(), 30u);
}

TEST(CommandAnswers, KeepsTheNewestCapacityAnswersAndBoundsTheFile) {
  testing::TempDir dir;
  const fs::path path = dir.Path() / "answers.bin";
  uintmax_t largest = 0;
  {
    auto answers = CommandAnswers::Open(path, 4);
    ASSERT_TRUE(answers.ok());
    for (int id = 1; id <= 40; ++id) {
      ASSERT_TRUE((*answers)->Record(Answer(std::to_string(id))).ok());
      largest = std::max(largest, fs::file_size(path));
    }
    EXPECT_EQ((*answers)->size(), 4u);
    EXPECT_FALSE((*answers)->Find("36").has_value());
    EXPECT_TRUE((*answers)->Find("37").has_value());
  }
  // Never more than twice the capacity on disk.
  EXPECT_LE(largest, 8 * (4 + Answer("40").ByteSizeLong()));
  auto answers = CommandAnswers::Open(path, 4);
  ASSERT_TRUE(answers.ok());
  EXPECT_EQ((*answers)->size(), 4u);
  for (const char* id : {"37", "38", "39", "40"}) EXPECT_TRUE((*answers)->Find(id).has_value()) << id;
}

TEST(CommandAnswers, InMemoryForgetsTheOldestBeyondCapacity) {
  std::unique_ptr<CommandAnswers> answers = CommandAnswers::InMemory(2);
  ASSERT_TRUE(answers->Record(Answer("a")).ok());
  ASSERT_TRUE(answers->Record(Answer("b")).ok());
  ASSERT_TRUE(answers->Record(Answer("c")).ok());
  EXPECT_FALSE(answers->Find("a").has_value());
  EXPECT_TRUE(answers->Find("b").has_value());
  EXPECT_TRUE(answers->Find("c").has_value());
}

}  // namespace
}  // namespace modelcache
