#include "agent/maintenance/maintenance_service.h"

#include <grpcpp/grpcpp.h>

#include "agent/maintenance/maintenance.h"
#include "agent/metrics.h"
#include "common/grpc_status.h"
#include "modelcache/v1/agent.grpc.pb.h"
#include "modelcache/v1/maintenance.grpc.pb.h"

namespace modelcache {
namespace {

template <typename Response>
grpc::Status Answer(absl::StatusOr<Response> result, Response* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

class MaintenanceService final : public v1::Maintenance::Service {
 public:
  explicit MaintenanceService(Maintenance& maintenance) : maintenance_(maintenance) {}

  grpc::Status Volumes(grpc::ServerContext*, const v1::VolumesRequest*,
                       v1::VolumesResponse* response) override {
    *response = maintenance_.Volumes();
    return grpc::Status::OK;
  }
  grpc::Status Cleanup(grpc::ServerContext*, const v1::CleanupRequest* request,
                       v1::CleanupResponse* response) override {
    return Answer(maintenance_.Cleanup(*request), response);
  }
  grpc::Status Verify(grpc::ServerContext*, const v1::VerifyRequest* request,
                      v1::VerifyResponse* response) override {
    return Answer(maintenance_.Verify(*request), response);
  }
  grpc::Status Repair(grpc::ServerContext*, const v1::RepairRequest* request,
                      v1::RepairResponse* response) override {
    return Answer(maintenance_.Repair(*request), response);
  }
  grpc::Status Migrate(grpc::ServerContext*, const v1::MigrateRequest* request,
                       v1::MigrateResponse* response) override {
    return Answer(maintenance_.Migrate(*request), response);
  }

 private:
  Maintenance& maintenance_;
};

class RefusingAgentService final : public v1::Agent::Service {
 public:
  RefusingAgentService(AgentMetrics& metrics, std::string reason)
      : metrics_(metrics), reason_(std::move(reason)) {}

  grpc::Status Ensure(grpc::ServerContext*, const v1::EnsureRequest*,
                      grpc::ServerWriter<v1::EnsureProgress>*) override {
    metrics_.CountEnsure(EnsureResult::kError);
    return Refused();
  }
  grpc::Status Stat(grpc::ServerContext*, const v1::StatRequest*, v1::CachedModel*) override {
    return Refused();
  }
  grpc::Status List(grpc::ServerContext*, const v1::ListRequest*, v1::ListResponse*) override {
    return Refused();
  }

 private:
  grpc::Status Refused() const {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        reason_ + ": download the model yourself");
  }
  AgentMetrics& metrics_;
  std::string reason_;
};

class RefusingMaintenanceService final : public v1::Maintenance::Service {
 public:
  explicit RefusingMaintenanceService(std::string reason) : reason_(std::move(reason)) {}

  grpc::Status Volumes(grpc::ServerContext*, const v1::VolumesRequest*,
                       v1::VolumesResponse*) override {
    return Refused();
  }
  grpc::Status Cleanup(grpc::ServerContext*, const v1::CleanupRequest*,
                       v1::CleanupResponse*) override {
    return Refused();
  }
  grpc::Status Verify(grpc::ServerContext*, const v1::VerifyRequest*,
                      v1::VerifyResponse*) override {
    return Refused();
  }
  grpc::Status Repair(grpc::ServerContext*, const v1::RepairRequest*,
                      v1::RepairResponse*) override {
    return Refused();
  }
  grpc::Status Migrate(grpc::ServerContext*, const v1::MigrateRequest*,
                       v1::MigrateResponse*) override {
    return Refused();
  }

 private:
  grpc::Status Refused() const {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, reason_);
  }
  std::string reason_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeMaintenanceService(Maintenance& maintenance) {
  return std::make_unique<MaintenanceService>(maintenance);
}

std::unique_ptr<grpc::Service> MakeRefusingAgentService(AgentMetrics& metrics, std::string reason) {
  return std::make_unique<RefusingAgentService>(metrics, std::move(reason));
}

std::unique_ptr<grpc::Service> MakeRefusingMaintenanceService(std::string reason) {
  return std::make_unique<RefusingMaintenanceService>(std::move(reason));
}

}  // namespace modelcache
