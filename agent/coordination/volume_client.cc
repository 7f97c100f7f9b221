#include "agent/coordination/volume_client.h"

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <set>

#include "agent/coordination/coordinator_channel.h"
#include "agent/coordination/coordinator_client.h"
#include "common/grpc_status.h"
#include "modelcache/v1/coordinator.grpc.pb.h"

namespace modelcache {

class VolumeClient::Impl {
 public:
  explicit Impl(const CoordinatorClientOptions& options) : token_(options.token) {
    grpc::ChannelArguments arguments;
    // A coordinator that comes back is used again within a second.
    arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    stub_ = v1::Coordinator::NewStub(grpc::CreateCustomChannel(
        options.target, CoordinatorChannelCredentials(options), arguments));
  }

  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Call(Method method, const Request& request,
                                std::chrono::milliseconds timeout) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
    {
      std::lock_guard lock(mutex_);
      if (cancelled_) return absl::CancelledError("coordinator: the agent is shutting down");
      in_flight_.insert(&context);
    }
    Response response;
    grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    {
      std::lock_guard lock(mutex_);
      in_flight_.erase(&context);
    }
    if (!status.ok()) {
      return FromGrpcStatus(status, "coordinator: ");
    }
    return response;
  }

  void CancelAll() {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    for (grpc::ClientContext* context : in_flight_) context->TryCancel();
  }

 private:
  const std::string token_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::mutex mutex_;  // guards in_flight_ and cancelled_
  std::set<grpc::ClientContext*> in_flight_;
  bool cancelled_ = false;
};

VolumeClient::VolumeClient(const CoordinatorClientOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}

VolumeClient::~VolumeClient() = default;

void VolumeClient::CancelAll() { impl_->CancelAll(); }

absl::StatusOr<v1::PurgeResponse> VolumeClient::MakeRoom(const v1::MakeRoomRequest& request,
                                                         std::chrono::milliseconds timeout) {
  return impl_->Call<v1::MakeRoomRequest, v1::PurgeResponse>(&v1::Coordinator::Stub::MakeRoom,
                                                               request, timeout);
}

absl::StatusOr<std::set<std::pair<std::string, std::string>>> VolumeClient::LeasedModels(
    const std::string& volume_id, std::chrono::milliseconds timeout) {
  v1::VolumeLeasesRequest request;
  request.set_volume_id(volume_id);
  absl::StatusOr<v1::VolumeLeasesResponse> response =
      impl_->Call<v1::VolumeLeasesRequest, v1::VolumeLeasesResponse>(
          &v1::Coordinator::Stub::VolumeLeases, request, timeout);
  if (!response.ok()) return response.status();
  std::set<std::pair<std::string, std::string>> leased;
  for (const v1::LeasedModel& model : response->models()) {
    leased.emplace(model.name(), model.version());
  }
  return leased;
}

}  // namespace modelcache
