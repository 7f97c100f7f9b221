#include "common/grpc_status.h"

#include <gtest/gtest.h>

#include "common/status_annotate.h"

namespace modelcache {
namespace {

TEST(GrpcStatus, CodeAndMessageCrossBothWays) {
  grpc::Status wire = ToGrpcStatus(absl::DataLossError("model m@1: sha256 mismatch"));
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(wire.error_message(), "model m@1: sha256 mismatch");
  absl::Status back = FromGrpcStatus(wire);
  EXPECT_EQ(back.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(back.message(), "model m@1: sha256 mismatch");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, "coordinator: ").ok());
}

TEST(GrpcStatus, APrefixNamesWhoAnswered) {
  absl::Status status =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::ABORTED, "lease lost"), "coordinator: ");
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(status.message(), "coordinator: lease lost");
}

TEST(GrpcStatus, ACodeCarriedInAMessageBecomesAStatus) {
  absl::Status status = StatusFromCode(5, "gone");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "gone");
}

TEST(StatusAnnotate, ContextGoesFirstAndTheCodeAndPayloadsStay) {
  absl::Status inner = absl::UnavailableError("range ignored");
  inner.SetPayload("modelcache/test-mark", absl::Cord("x"));
  absl::Status annotated = Annotate(inner, "model m@1: file a.bin");
  EXPECT_EQ(annotated.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(annotated.message(), "model m@1: file a.bin: range ignored");
  EXPECT_TRUE(annotated.GetPayload("modelcache/test-mark").has_value());
  EXPECT_TRUE(Annotate(absl::OkStatus(), "anything").ok());
}

}  // namespace
}  // namespace modelcache
