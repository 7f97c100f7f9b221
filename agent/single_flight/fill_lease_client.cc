#include "agent/single_flight/fill_lease_client.h"

#include <grpcpp/grpcpp.h>

#include "agent/coordination/coordinator_channel.h"
#include "common/grpc_status.h"
#include "modelcache/v1/coordinator.grpc.pb.h"

namespace modelcache {

class FillLeaseClient::Impl {
 public:
  Impl(const CoordinatorClientOptions& options, std::chrono::milliseconds call_timeout)
      : options_(options), call_timeout_(call_timeout) {
    std::shared_ptr<grpc::ChannelCredentials> credentials = CoordinatorChannelCredentials(options);
    grpc::ChannelArguments arguments;
    // A coordinator that comes back is used again within a second.
    arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    stub_ = v1::Coordinator::NewStub(
        grpc::CreateCustomChannel(options.target, credentials, arguments));
  }

  template <typename Request, typename Method>
  absl::StatusOr<v1::FillLease> Call(Method method, const Request& request,
                                     std::chrono::milliseconds timeout) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    if (std::string token = CoordinatorBearerToken(options_); !token.empty()) {
      context.AddMetadata("authorization", "Bearer " + token);
    }
    v1::FillLease response;
    grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (!status.ok()) {
      return FromGrpcStatus(status, "coordinator: ");
    }
    return response;
  }

  const CoordinatorClientOptions options_;  // for the token
  const std::chrono::milliseconds call_timeout_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

FillLeaseClient::FillLeaseClient(const CoordinatorClientOptions& options,
                                 std::chrono::milliseconds call_timeout)
    : impl_(std::make_unique<Impl>(options, call_timeout)) {}

FillLeaseClient::~FillLeaseClient() = default;

absl::StatusOr<v1::FillLease> FillLeaseClient::Acquire(const v1::FillLeaseRequest& request) {
  return impl_->Call(&v1::Coordinator::Stub::AcquireFillLease, request, impl_->call_timeout_);
}

absl::StatusOr<v1::FillLease> FillLeaseClient::Renew(const v1::FillLeaseRequest& request) {
  return impl_->Call(&v1::Coordinator::Stub::RenewFillLease, request, impl_->call_timeout_);
}

absl::StatusOr<v1::FillLease> FillLeaseClient::Release(const v1::FillLeaseRequest& request) {
  return impl_->Call(&v1::Coordinator::Stub::ReleaseFillLease, request, impl_->call_timeout_);
}

absl::StatusOr<v1::FillLease> FillLeaseClient::Watch(const v1::WatchFillLeaseRequest& request) {
  return impl_->Call(&v1::Coordinator::Stub::WatchFillLease, request,
                     impl_->call_timeout_ + std::chrono::milliseconds(request.wait_ms()));
}

}  // namespace modelcache
