#pragma once
// How the admin commands reach the coordinator: flags/env -> channel + bearer token, and gRPC
// errors -> one message on stderr and an exit code.
#include <memory>
#include <string>

#include "common/environment.h"
#include "modelcache/v1/coordinator.grpc.pb.h"

namespace modelcache::cli {

struct AdminOptions {
  std::string coordinator;  // host:port; default $MODELCACHE_COORDINATOR
  std::string token;        // default $MODELCACHE_TOKEN, then the kubeconfig user's token
  std::string kubeconfig;   // --kubeconfig; empty: $KUBECONFIG, in-cluster, ~/.kube/config
  std::string context;      // --context; empty: the current-context
  bool json = false;
  bool tls = false;
  std::string ca_file;      // PEM roots for TLS (implies --tls)
  int timeout_seconds = 30;
};

class AdminConnection {
 public:
  // Fills coordinator/token from $MODELCACHE_COORDINATOR/$MODELCACHE_TOKEN in `environment`
  // when the flags are empty, and the token from the kubeconfig (cli/kubeconfig_token.h) when
  // there is still none. nullptr (after a message on stderr) when no coordinator address is
  // known or the CA file cannot be read.
  static std::unique_ptr<AdminConnection> Open(AdminOptions options,
                                               const ProcessEnvironment& environment);

  v1::Coordinator::Stub& Stub() { return *stub_; }
  // A context with the deadline and the authorization header.
  std::unique_ptr<grpc::ClientContext> Context() const;
  const AdminOptions& Options() const { return options_; }

  // Prints "modelcachectl: <what>: <reason>" to stderr and returns the exit code: 3 when the
  // coordinator cannot be reached, 4 for an answered error.
  int Fail(const std::string& what, const grpc::Status& status) const;

 private:
  AdminOptions options_;
  // Where the token came from ("--token or $MODELCACHE_TOKEN", "kubeconfig ..."), or why none
  // was sent: said with an UNAUTHENTICATED answer.
  std::string token_origin_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

}  // namespace modelcache::cli
