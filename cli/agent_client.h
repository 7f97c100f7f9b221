#pragma once
// modelcachectl's connection to the node agent over its Unix socket.
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/grpc_status.h"  // FromGrpcStatus for the commands
#include "modelcache/v1/agent.grpc.pb.h"

namespace modelcache::cli {

// A channel that reached READY within `timeout`. UNAVAILABLE (naming the socket) when the
// socket does not exist (at once) or nothing accepted a connection in time.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToAgent(const std::string& socket_path,
                                                              std::chrono::milliseconds timeout);

// "DATA_LOSS: model x@1: file a.bin: sha256 mismatch ..." for people.
std::string DescribeError(const absl::Status& status);

}  // namespace modelcache::cli
