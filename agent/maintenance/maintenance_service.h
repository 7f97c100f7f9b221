#pragma once
// The gRPC service modelcache.v1.Maintenance (proto/modelcache/v1/maintenance.proto) over
// Maintenance, and the Agent service an agent answers with when the storage check refused
// its cache. Free of <grpcpp/...> like agent/grpc/agent_service.h.
#include <memory>
#include <string>

namespace grpc {
class Service;
}  // namespace grpc

namespace modelcache {

class AgentMetrics;
class Maintenance;

// Handlers run the (blocking) operation on the gRPC thread that received the call, never on
// the event loop. `maintenance` must outlive the service.
std::unique_ptr<grpc::Service> MakeMaintenanceService(Maintenance& maintenance);

// For an agent whose cache was refused (`reason`, e.g. "cache refused: tmpfs at /cache ..."):
// Ensure, Stat and List answer FAILED_PRECONDITION with the reason, so that
// `modelcachectl fetch --fallback` downloads locally; Ensure counts as an error in metrics.
std::unique_ptr<grpc::Service> MakeRefusingAgentService(AgentMetrics& metrics, std::string reason);

// Maintenance calls on such an agent answer FAILED_PRECONDITION with the reason too.
std::unique_ptr<grpc::Service> MakeRefusingMaintenanceService(std::string reason);

}  // namespace modelcache
