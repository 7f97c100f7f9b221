#include "coordinator/coordinator_service.h"

#include <prometheus/counter.h>

#include <string>
#include <type_traits>

#include "common/grpc_status.h"
#include "common/log_fields.h"
#include "coordinator/admin_service.h"
#include "coordinator/agent_stream.h"
#include "coordinator/agent_facing_service.h"
#include "coordinator/kube_auth/caller_auth.h"
#include "spdlog/spdlog.h"

namespace modelcache {

absl::StatusOr<Principal> CoordinatorService::Check(grpc::ServerContextBase* context,
                                                    Permission permission,
                                                    std::string_view what) {
  if (auth_ == nullptr) return Principal{"anonymous", Role::kAdmin};
  std::string_view header;
  const auto& metadata = context->client_metadata();
  auto found = metadata.find("authorization");
  if (found != metadata.end()) header = std::string_view(found->second.data(), found->second.size());
  // The tokens file, then the Kubernetes reviews (bounded wait: coordinator/kube_auth/).
  absl::StatusOr<Principal> principal = auth_->Check(header, permission, what);
  if (!principal.ok()) {
    auth_refused_.Increment();
    spdlog::warn("auth refused {}", LogFields()
                                        .Add("call", what)
                                        .Add("peer", context->peer())
                                        .Add("error", principal.status())
                                        .Add("next", "the call is refused"));
    return principal.status();
  }
  if (permission == Permission::kAdmin || permission == Permission::kMaintain) {
    spdlog::info("auth granted {}", LogFields()
                                        .Add("call", what)
                                        .Add("principal", principal->name)
                                        .Add("role", RoleName(principal->role))
                                        .Add("peer", context->peer()));
  }
  return principal;
}

template <typename Body>
grpc::Status CoordinatorService::Handle(grpc::ServerContext* context, Permission permission,
                                        std::string_view what, Body body) {
  absl::StatusOr<Principal> principal = Check(context, permission, what);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  if constexpr (std::is_invocable_v<Body, const Principal&>) {
    return ToGrpcStatus(body(*principal));
  } else {
    return ToGrpcStatus(body());
  }
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* CoordinatorService::Connect(
    grpc::CallbackServerContext* context) {
  absl::StatusOr<Principal> principal = Check(context, Permission::kAgentStream, "Connect");
  return streams_.Open(context, principal.ok() ? principal->name : std::string(),
                       principal.status());
}

grpc::Status CoordinatorService::ListModels(grpc::ServerContext* context,
                                            const v1::ListModelsRequest*,
                                            v1::ListModelsResponse* response) {
  return Handle(context, Permission::kRead, "ListModels",
                [&] { return admin_.ListModels(response); });
}

grpc::Status CoordinatorService::ShowModel(grpc::ServerContext* context,
                                           const v1::ShowModelRequest* request,
                                           v1::ModelInfo* response) {
  return Handle(context, Permission::kRead, "ShowModel",
                [&] { return admin_.ShowModel(*request, response); });
}

grpc::Status CoordinatorService::Usage(grpc::ServerContext* context, const v1::UsageRequest*,
                                       v1::UsageResponse* response) {
  return Handle(context, Permission::kRead, "Usage", [&] { return admin_.Usage(response); });
}

grpc::Status CoordinatorService::Nodes(grpc::ServerContext* context, const v1::NodesRequest*,
                                       v1::NodesResponse* response) {
  return Handle(context, Permission::kRead, "Nodes", [&] { return admin_.Nodes(response); });
}

grpc::Status CoordinatorService::SetCaching(grpc::ServerContext* context,
                                            const v1::SetCachingRequest* request,
                                            v1::ModelInfo* response) {
  return Handle(context, Permission::kAdmin, "SetCaching",
                [&] { return admin_.SetCaching(*request, response); });
}

grpc::Status CoordinatorService::SetPin(grpc::ServerContext* context,
                                        const v1::SetPinRequest* request,
                                        v1::ModelInfo* response) {
  return Handle(context, Permission::kAdmin, "SetPin",
                [&] { return admin_.SetPin(*request, response); });
}

grpc::Status CoordinatorService::DeleteModel(grpc::ServerContext* context,
                                             const v1::DeleteModelRequest* request,
                                             v1::PurgeResponse* response) {
  return Handle(context, Permission::kAdmin, "DeleteModel",
                [&] { return admin_.DeleteModel(*request, response); });
}

grpc::Status CoordinatorService::Purge(grpc::ServerContext* context,
                                       const v1::PurgeRequest* request,
                                       v1::PurgeResponse* response) {
  return Handle(context, Permission::kAdmin, "Purge",
                [&] { return admin_.Purge(*request, response); });
}

grpc::Status CoordinatorService::PurgeDryRun(grpc::ServerContext* context,
                                             const v1::PurgeDryRunRequest* request,
                                             v1::PurgeResponse* response) {
  return Handle(context, Permission::kRead, "PurgeDryRun",
                [&] { return admin_.PurgeDryRun(*request, response); });
}

grpc::Status CoordinatorService::MakeRoom(grpc::ServerContext* context,
                                          const v1::MakeRoomRequest* request,
                                          v1::PurgeResponse* response) {
  return Handle(context, Permission::kAgentStream, "MakeRoom",
                [&] { return agents_.MakeRoom(*request, context->deadline(), response); });
}

grpc::Status CoordinatorService::VolumeLeases(grpc::ServerContext* context,
                                              const v1::VolumeLeasesRequest* request,
                                              v1::VolumeLeasesResponse* response) {
  return Handle(context, Permission::kLease, "VolumeLeases",
                [&] { return agents_.VolumeLeases(*request, response); });
}

grpc::Status CoordinatorService::Prefetch(grpc::ServerContext* context,
                                          const v1::PrefetchRequest* request,
                                          v1::PrefetchResponse* response) {
  return Handle(context, Permission::kMaintain, "Prefetch", [&](const Principal& principal) {
    return admin_.Prefetch(*request, principal, response);
  });
}

grpc::Status CoordinatorService::SetSource(grpc::ServerContext* context,
                                           const v1::SetSourceRequest* request,
                                           v1::ModelInfo* response) {
  return Handle(context, Permission::kMaintain, "SetSource", [&](const Principal& principal) {
    return admin_.SetSource(*request, principal, response);
  });
}

grpc::Status CoordinatorService::SetSourcePrefix(grpc::ServerContext* context,
                                                 const v1::SetSourcePrefixRequest* request,
                                                 v1::ModelInfo* response) {
  return Handle(context, Permission::kMaintain, "SetSourcePrefix",
                [&](const Principal& principal) {
                  return admin_.SetSourcePrefix(*request, principal, response);
                });
}

grpc::Status CoordinatorService::Audit(grpc::ServerContext* context,
                                       const v1::AuditRequest* request,
                                       v1::AuditResponse* response) {
  return Handle(context, Permission::kRead, "Audit",
                [&] { return admin_.Audit(*request, response); });
}

grpc::Status CoordinatorService::Namespaces(grpc::ServerContext* context,
                                            const v1::NamespacesRequest*,
                                            v1::NamespacesResponse* response) {
  return Handle(context, Permission::kRead, "Namespaces",
                [&] { return admin_.Namespaces(response); });
}

grpc::Status CoordinatorService::AcquireLease(grpc::ServerContext* context,
                                              const v1::LeaseRequest* request,
                                              v1::Lease* response) {
  return Handle(context, Permission::kLease, "AcquireLease",
                [&] { return agents_.PutInUseLease(*request, /*renew_only=*/false, response); });
}

grpc::Status CoordinatorService::RenewLease(grpc::ServerContext* context,
                                            const v1::LeaseRequest* request,
                                            v1::Lease* response) {
  return Handle(context, Permission::kLease, "RenewLease",
                [&] { return agents_.PutInUseLease(*request, /*renew_only=*/true, response); });
}

grpc::Status CoordinatorService::ReleaseLease(grpc::ServerContext* context,
                                              const v1::LeaseRequest* request,
                                              v1::Lease* response) {
  return Handle(context, Permission::kLease, "ReleaseLease",
                [&] { return agents_.ReleaseInUseLease(*request, response); });
}

grpc::Status CoordinatorService::AcquireFillLease(grpc::ServerContext* context,
                                                  const v1::FillLeaseRequest* request,
                                                  v1::FillLease* response) {
  return Handle(context, Permission::kLease, "AcquireFillLease",
                [&] { return agents_.AcquireFillLease(*request, response); });
}

grpc::Status CoordinatorService::RenewFillLease(grpc::ServerContext* context,
                                                const v1::FillLeaseRequest* request,
                                                v1::FillLease* response) {
  return Handle(context, Permission::kLease, "RenewFillLease",
                [&] { return agents_.RenewFillLease(*request, response); });
}

grpc::Status CoordinatorService::ReleaseFillLease(grpc::ServerContext* context,
                                                  const v1::FillLeaseRequest* request,
                                                  v1::FillLease* response) {
  return Handle(context, Permission::kLease, "ReleaseFillLease",
                [&] { return agents_.ReleaseFillLease(*request, response); });
}

grpc::Status CoordinatorService::WatchFillLease(grpc::ServerContext* context,
                                                const v1::WatchFillLeaseRequest* request,
                                                v1::FillLease* response) {
  return Handle(context, Permission::kLease, "WatchFillLease", [&] {
    return agents_.WatchFillLease(*request, [context] { return context->IsCancelled(); },
                                  response);
  });
}

}  // namespace modelcache
