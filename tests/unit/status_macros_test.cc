#include "common/status_macros.h"

#include <gtest/gtest.h>

namespace {

absl::StatusOr<int> Half(int value) {
  if (value % 2 != 0) return absl::InvalidArgumentError("odd");
  return value / 2;
}

absl::StatusOr<int> Quarter(int value) {
  ASSIGN_OR_RETURN(int half, Half(value));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int value) {
  RETURN_IF_ERROR(Half(value).status());
  return absl::OkStatus();
}

TEST(StatusMacros, AssignOrReturnPassesValues) { EXPECT_EQ(*Quarter(8), 2); }

TEST(StatusMacros, AssignOrReturnPropagatesError) {
  EXPECT_EQ(Quarter(6).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StatusMacros, ReturnIfErrorPropagatesError) {
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(3).message(), "odd");
}

}  // namespace
