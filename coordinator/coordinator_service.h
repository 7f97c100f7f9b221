#pragma once
// modelcache.v1.Coordinator (proto/modelcache/v1/coordinator.proto) over its three parts:
// every call is authenticated and authorized first (kube_auth/caller_auth.h: the tokens file,
// then Kubernetes reviews; a refusal is logged and counted, an admin or maintainer call is
// logged with its principal), then handed to the agent streams (Connect, agent_stream.h), the
// AgentFacingService or the AdminService. Connect runs on gRPC's callback API (no thread per
// agent); the other RPCs are synchronous.
#include "coordinator/auth.h"
#include "modelcache/v1/coordinator.grpc.pb.h"

namespace prometheus {
class Counter;
}  // namespace prometheus

namespace modelcache {

namespace kube_auth {
class CallerAuth;
}  // namespace kube_auth

class AdminService;
class AgentFacingService;
class AgentStreams;

class CoordinatorService final
    : public v1::Coordinator::WithCallbackMethod_Connect<v1::Coordinator::Service> {
 public:
  // `auth` null: authentication off, every caller is admin. All borrowed objects must outlive
  // the service.
  CoordinatorService(kube_auth::CallerAuth* auth, prometheus::Counter& auth_refused,
                     AgentStreams& streams, AgentFacingService& agents, AdminService& admin)
      : auth_(auth), auth_refused_(auth_refused), streams_(streams), agents_(agents),
        admin_(admin) {}

  grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* context) override;

  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status ShowModel(grpc::ServerContext* context, const v1::ShowModelRequest* request,
                         v1::ModelInfo* response) override;
  grpc::Status Usage(grpc::ServerContext* context, const v1::UsageRequest* request,
                     v1::UsageResponse* response) override;
  grpc::Status Nodes(grpc::ServerContext* context, const v1::NodesRequest* request,
                     v1::NodesResponse* response) override;
  grpc::Status SetCaching(grpc::ServerContext* context, const v1::SetCachingRequest* request,
                          v1::ModelInfo* response) override;
  grpc::Status SetPin(grpc::ServerContext* context, const v1::SetPinRequest* request,
                      v1::ModelInfo* response) override;
  grpc::Status DeleteModel(grpc::ServerContext* context, const v1::DeleteModelRequest* request,
                           v1::PurgeResponse* response) override;
  grpc::Status Purge(grpc::ServerContext* context, const v1::PurgeRequest* request,
                     v1::PurgeResponse* response) override;
  grpc::Status PurgeDryRun(grpc::ServerContext* context, const v1::PurgeDryRunRequest* request,
                           v1::PurgeResponse* response) override;
  grpc::Status MakeRoom(grpc::ServerContext* context, const v1::MakeRoomRequest* request,
                        v1::PurgeResponse* response) override;
  grpc::Status VolumeLeases(grpc::ServerContext* context, const v1::VolumeLeasesRequest* request,
                            v1::VolumeLeasesResponse* response) override;
  grpc::Status Prefetch(grpc::ServerContext* context, const v1::PrefetchRequest* request,
                        v1::PrefetchResponse* response) override;
  grpc::Status SetSource(grpc::ServerContext* context, const v1::SetSourceRequest* request,
                         v1::ModelInfo* response) override;
  grpc::Status SetSourcePrefix(grpc::ServerContext* context,
                               const v1::SetSourcePrefixRequest* request,
                               v1::ModelInfo* response) override;
  grpc::Status Audit(grpc::ServerContext* context, const v1::AuditRequest* request,
                     v1::AuditResponse* response) override;
  grpc::Status Namespaces(grpc::ServerContext* context, const v1::NamespacesRequest* request,
                          v1::NamespacesResponse* response) override;

  grpc::Status AcquireLease(grpc::ServerContext* context, const v1::LeaseRequest* request,
                            v1::Lease* response) override;
  grpc::Status RenewLease(grpc::ServerContext* context, const v1::LeaseRequest* request,
                          v1::Lease* response) override;
  grpc::Status ReleaseLease(grpc::ServerContext* context, const v1::LeaseRequest* request,
                            v1::Lease* response) override;
  grpc::Status AcquireFillLease(grpc::ServerContext* context, const v1::FillLeaseRequest* request,
                                v1::FillLease* response) override;
  grpc::Status RenewFillLease(grpc::ServerContext* context, const v1::FillLeaseRequest* request,
                              v1::FillLease* response) override;
  grpc::Status ReleaseFillLease(grpc::ServerContext* context,
                                const v1::FillLeaseRequest* request,
                                v1::FillLease* response) override;
  grpc::Status WatchFillLease(grpc::ServerContext* context,
                              const v1::WatchFillLeaseRequest* request,
                              v1::FillLease* response) override;

 private:
  // Who calls, if allowed `permission` for the call `what`.
  absl::StatusOr<Principal> Check(grpc::ServerContextBase* context, Permission permission,
                                  std::string_view what);
  // Check, then `body()` (or `body(principal)`), its status as the call's answer.
  template <typename Body>
  grpc::Status Handle(grpc::ServerContext* context, Permission permission,
                      std::string_view what, Body body);

  kube_auth::CallerAuth* const auth_;
  prometheus::Counter& auth_refused_;
  AgentStreams& streams_;
  AgentFacingService& agents_;
  AdminService& admin_;
};

}  // namespace modelcache
