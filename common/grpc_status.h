#pragma once
// absl::Status <-> grpc::Status, the one place that converts. Abseil and gRPC share the
// canonical code numbers (OK 0 ... UNAUTHENTICATED 16), so a code crosses unchanged and an
// error raised deep in a fill reaches the client with the code it was raised with.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "common/safe_text.h"

namespace modelcache {

// The status message travels in the response's metadata, which gRPC clients cap at 8 KiB by
// default: a longer message would reach the client as RESOURCE_EXHAUSTED ("received initial
// metadata size exceeds limit") instead of the error. Longer messages lose their middle.
inline constexpr size_t kMaxGrpcStatusMessageBytes = 4096;

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      CutTextMiddle(std::string_view(status.message().data(), status.message().size()),
                                    kMaxGrpcStatusMessageBytes));
}

// `prefix` goes before the message ("coordinator: "), naming who answered.
inline absl::Status FromGrpcStatus(const grpc::Status& status, std::string_view prefix = {}) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      std::string(prefix) + status.error_message());
}

// A status carried in a message as its code number and text (CommandResult, FillLease).
inline absl::Status StatusFromCode(int32_t code, std::string_view message) {
  return absl::Status(static_cast<absl::StatusCode>(code),
                      absl::string_view(message.data(), message.size()));
}

}  // namespace modelcache
