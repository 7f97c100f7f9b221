#include "agent/coordination/coordinator_channel.h"

#include <grpcpp/grpcpp.h>

#include "agent/coordination/coordinator_client.h"

namespace modelcache {

std::shared_ptr<grpc::ChannelCredentials> CoordinatorChannelCredentials(
    const CoordinatorClientOptions& options) {
  if (!options.tls && options.root_certs.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.root_certs;
  ssl.pem_cert_chain = options.client_cert;
  ssl.pem_private_key = options.client_key;
  return grpc::SslCredentials(ssl);
}

}  // namespace modelcache
