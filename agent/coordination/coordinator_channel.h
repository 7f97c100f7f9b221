#pragma once
// The channel credentials both of the agent's coordinator clients dial with: the report stream
// (coordinator_client) and the fill leases (fill_lease_client).
#include <memory>

namespace grpc {
class ChannelCredentials;
}

namespace modelcache {

struct CoordinatorClientOptions;

// TLS with the options' PEM root certificates and client certificate when `tls` is set or
// root certificates are given; plaintext otherwise.
std::shared_ptr<grpc::ChannelCredentials> CoordinatorChannelCredentials(
    const CoordinatorClientOptions& options);

}  // namespace modelcache
