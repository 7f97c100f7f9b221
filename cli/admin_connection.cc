#include "cli/admin_connection.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>

#include "cli/admin_commands.h"
#include "cli/kubeconfig_token.h"
#include "common/fs.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {
namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT: return "invalid argument";
    case grpc::StatusCode::NOT_FOUND: return "not found";
    case grpc::StatusCode::PERMISSION_DENIED: return "permission denied";
    case grpc::StatusCode::UNAUTHENTICATED: return "unauthenticated";
    case grpc::StatusCode::FAILED_PRECONDITION: return "failed precondition";
    case grpc::StatusCode::UNAVAILABLE: return "unavailable";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "deadline exceeded";
    default: return "error";
  }
}

}  // namespace

std::unique_ptr<AdminConnection> AdminConnection::Open(AdminOptions options,
                                                      const ProcessEnvironment& environment) {
  if (options.coordinator.empty()) options.coordinator = environment.Get("MODELCACHE_COORDINATOR");
  if (options.token.empty()) options.token = environment.Get("MODELCACHE_TOKEN");
  if (options.coordinator.empty()) {
    std::fprintf(stderr,
                 "modelcachectl: no coordinator: pass --coordinator host:port or set "
                 "MODELCACHE_COORDINATOR\n");
    return nullptr;
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options.tls || !options.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      absl::StatusOr<std::string> pem = ReadFileToString(options.ca_file);
      if (!pem.ok()) {
        std::fprintf(stderr, "modelcachectl: --ca-file: %s\n",
                     std::string(pem.status().message()).c_str());
        return nullptr;
      }
      ssl.pem_root_certs = *std::move(pem);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  auto connection = std::unique_ptr<AdminConnection>(new AdminConnection());
  if (!options.token.empty()) {
    connection->token_origin_ = "the token of --token or $MODELCACHE_TOKEN";
  } else {
    absl::StatusOr<KubeconfigToken> found =
        TokenFromKubeconfig({.kubeconfig = options.kubeconfig, .context = options.context},
                            kube::KubeEnvironment::FromLookup(
                                [&environment](const char* name) { return environment.Lookup(name); }));
    if (found.ok()) {
      options.token = std::move(found->token);
      connection->token_origin_ = "the token of " + found->origin;
    } else {
      connection->token_origin_ = fmt::format("no token sent (--token, $MODELCACHE_TOKEN; {})",
                                              std::string(found.status().message()));
    }
  }
  connection->options_ = std::move(options);
  connection->stub_ = v1::Coordinator::NewStub(
      grpc::CreateChannel(connection->options_.coordinator, credentials));
  return connection;
}

std::unique_ptr<grpc::ClientContext> AdminConnection::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(options_.timeout_seconds));
  if (!options_.token.empty()) context->AddMetadata("authorization", "Bearer " + options_.token);
  return context;
}

int AdminConnection::Fail(const std::string& what, const grpc::Status& status) const {
  // The coordinator's own UNAVAILABLE for a review the API server did not answer is an answer,
  // not an unreachable coordinator (coordinator/kube_auth/kube_reviewer.h).
  const bool auth_unavailable = status.error_message().rfind("kubernetes auth:", 0) == 0;
  const bool unreachable = !auth_unavailable && (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                                                 status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  if (unreachable) {
    std::fprintf(stderr, "modelcachectl: %s: coordinator %s unreachable: %s\n", what.c_str(),
                 options_.coordinator.c_str(), status.error_message().c_str());
    return kExitUnreachable;
  }
  std::fprintf(stderr, "modelcachectl: %s: %s: %s\n", what.c_str(),
               CodeName(status.error_code()), status.error_message().c_str());
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
      status.error_code() == grpc::StatusCode::PERMISSION_DENIED || auth_unavailable) {
    std::fprintf(stderr, "modelcachectl: credentials: %s\n", token_origin_.c_str());
  }
  return kExitFailed;
}

}  // namespace modelcache::cli
