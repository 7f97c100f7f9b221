#include "cli/agent_client.h"

#include <sys/stat.h>

#include "common/status_format.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToAgent(const std::string& socket_path,
                                                              std::chrono::milliseconds timeout) {
  struct stat info;
  if (stat(socket_path.c_str(), &info) != 0) {
    return absl::UnavailableError(
        fmt::format("no agent socket at {} (is the modelcache agent running on this node?)",
                    socket_path));
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials());
  // Waits through transient failures: the agent may be starting next to us.
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + timeout)) {
    return absl::UnavailableError(fmt::format("agent at {} did not accept a connection within {} ms",
                                              socket_path, timeout.count()));
  }
  return channel;
}

std::string DescribeError(const absl::Status& status) {
  return fmt::format("{}: {}", absl::StatusCodeToString(status.code()), status.message());
}

}  // namespace modelcache::cli
