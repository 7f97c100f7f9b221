#include "tests/testing/registry_sources.h"

#include <grpcpp/grpcpp.h>

#include <regex>

#include "common/grpc_status.h"
#include "modelcache/v1/coordinator.grpc.pb.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {

absl::Status RegisterSource(const std::string& coordinator, std::string_view token,
                            std::string_view name, std::string_view version,
                            std::string_view source) {
  auto stub = v1::Coordinator::NewStub(
      grpc::CreateChannel(coordinator, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + std::string(token));
  v1::SetSourceRequest request;
  request.set_name(std::string(name));
  request.set_version(std::string(version));
  request.set_source(std::string(source));
  v1::ModelInfo info;
  grpc::Status status = stub->SetSource(&context, request, &info);
  return FromGrpcStatus(status,
                        "SetSource " + std::string(name) + "@" + std::string(version) + ": ");
}

bool WaitForRegisteredSources(const std::filesystem::path& agent_log, int sources,
                              std::chrono::milliseconds timeout, int times) {
  const std::regex line("caching policy from the coordinator: default \\w+, \\d+ rules, " +
                        std::to_string(sources) + " sources");
  return PollUntil(
      [&] {
        const std::string log = ReadTestFile(agent_log);
        return std::distance(std::sregex_iterator(log.begin(), log.end(), line),
                             std::sregex_iterator()) >= times;
      },
      timeout, std::chrono::milliseconds(50));
}

}  // namespace modelcache::testing
