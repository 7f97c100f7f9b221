#include "agent/grpc/agent_service.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <mutex>
#include <string>

#include "common/grpc_status.h"
#include "agent/grpc/ensure_mailbox.h"
#include "agent/grpc/ensure_source.h"
#include "agent/metrics.h"
#include "agent/model_cache.h"
#include "agent/pod_leases/pod_lease_table.h"
#include "common/log_fields.h"
#include "common/names.h"
#include "common/status_format.h"
#include "modelcache/v1/agent.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// How often a waiting Ensure handler looks whether its client went away.
constexpr std::chrono::milliseconds kCancelPollInterval{100};

// Models with at least one Ensure waiting on a fill (not a hit), for modelcache_fills_in_progress.
class FillTracker {
 public:
  explicit FillTracker(AgentMetrics& metrics) : metrics_(metrics) {}
  void Add(const std::string& model) {
    std::lock_guard lock(mutex_);
    ++waiters_[model];
    metrics_.SetFillsInProgress(waiters_.size());
  }
  void Remove(const std::string& model) {
    std::lock_guard lock(mutex_);
    auto found = waiters_.find(model);
    if (found == waiters_.end()) return;
    if (--found->second == 0) waiters_.erase(found);
    metrics_.SetFillsInProgress(waiters_.size());
  }

 private:
  AgentMetrics& metrics_;
  std::mutex mutex_;
  std::map<std::string, int> waiters_;
};

class AgentService final : public v1::Agent::Service {
 public:
  AgentService(ModelCache& cache, AgentMetrics& metrics, AgentServiceOptions options)
      : cache_(cache), metrics_(metrics), options_(options), fills_(metrics) {}

  grpc::Status Ensure(grpc::ServerContext* context, const v1::EnsureRequest* request,
                      grpc::ServerWriter<v1::EnsureProgress>* writer) override {
    absl::StatusOr<std::string> source = Admit(*request);
    if (!source.ok()) return ToGrpcStatus(source.status());
    // From here on the request names the source the cache fills from (and records).
    v1::EnsureRequest resolved = *request;
    resolved.set_source(*std::move(source));
    auto mailbox = std::make_shared<EnsureMailbox>();
    uint64_t subscription = cache_.Ensure(
        resolved, [mailbox](const v1::EnsureProgress& progress) { mailbox->PostProgress(progress); },
        [mailbox](absl::StatusOr<v1::EnsureProgress> result) { mailbox->PostDone(std::move(result)); });
    const std::string model = resolved.name() + "@" + resolved.version();
    bool tracked = false;
    auto untrack = [&] {
      if (tracked) fills_.Remove(model);
      tracked = false;
    };
    auto give_up = [&](grpc::Status status) {
      cache_.Unsubscribe(subscription);
      untrack();
      return status;
    };

    while (true) {
      EnsureMailbox::Mail mail = mailbox->Wait(kCancelPollInterval);
      if (context->IsCancelled()) {
        return give_up(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      }
      if (mail.progress && !mail.done) {
        if (!tracked && mail.progress->state() != v1::EnsureProgress::READY) {
          fills_.Add(model);
          tracked = true;
        }
        if (!writer->Write(*mail.progress)) {
          return give_up(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed by client"));
        }
      }
      if (!mail.done) continue;
      untrack();
      return Answer(resolved, *mail.done, writer);
    }
  }

  grpc::Status Stat(grpc::ServerContext*, const v1::StatRequest* request,
                    v1::CachedModel* response) override {
    absl::StatusOr<v1::CachedModel> model = cache_.Stat(request->name(), request->version());
    if (!model.ok()) return ToGrpcStatus(model.status());
    *response = *std::move(model);
    return grpc::Status::OK;
  }

  grpc::Status Hold(grpc::ServerContext*, const v1::HoldRequest* request,
                    v1::HoldResponse* response) override {
    absl::Status valid = ValidateModelName(request->name());
    if (valid.ok()) valid = ValidateModelVersion(request->version());
    if (!valid.ok()) return ToGrpcStatus(valid);
    if (request->holder().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hold: holder is empty");
    }
    if (options_.pod_leases == nullptr) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this agent keeps no leases");
    }
    PodLeaseTable& leases = *options_.pod_leases;
    const std::string model = request->name() + "@" + request->version();
    if (request->release()) {
      response->set_released(leases.Release(request->name(), request->version(), request->holder()));
      spdlog::info("pod lease released {}",
                   LogFields()
                       .Add("model", request->name())
                       .Add("version", request->version())
                       .Add("holder", request->holder())
                       .Add("result", response->released() ? "ended" : "had none"));
      if (response->released() && options_.on_leases_changed) options_.on_leases_changed();
    } else {
      const bool had = leases.LiveLeases(request->name(), request->version()) > 0;
      Clock::TimePoint expires = leases.Hold(request->name(), request->version(), request->holder(),
                                             std::chrono::seconds(request->ttl_seconds()));
      response->set_expires_unix_ms(ToUnixMillis(expires));
      spdlog::debug("lease of {} for {} until {}", model, request->holder(),
                    response->expires_unix_ms());
      if (!had && options_.on_leases_changed) options_.on_leases_changed();
    }
    response->set_live_leases(leases.LiveLeases(request->name(), request->version()));
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext*, const v1::ListRequest*,
                    v1::ListResponse* response) override {
    for (v1::CachedModel& model : cache_.List()) *response->add_models() = std::move(model);
    return grpc::Status::OK;
  }

 private:
  // The source the request fills from (the registry's, when there is one), unless caching is
  // refused here: disabled on this node or for the model, or a source the registry does not
  // name (FAILED_PRECONDITION, so that the client downloads on its own). Counted and logged.
  absl::StatusOr<std::string> Admit(const v1::EnsureRequest& request) {
    if (!options_.caching_enabled) {
      metrics_.CountEnsure(EnsureResult::kError);
      metrics_.CountFallback(FallbackReason::kNodeDisabled);
      return absl::FailedPreconditionError(
          "model caching is disabled on this node (modelsCacheStorage.enabled is false): "
          "download the model yourself");
    }
    if (options_.caching_allowed) {
      absl::Status allowed = options_.caching_allowed(request.name(), request.version());
      if (!allowed.ok()) {
        metrics_.CountEnsure(EnsureResult::kError);
        metrics_.CountFallback(options_.policy_known && !options_.policy_known()
                                   ? FallbackReason::kNoPolicy
                                   : FallbackReason::kModelDisabled);
        return allowed;
      }
    }
    RegistryLookup registry;
    if (options_.registry_lookup) registry = options_.registry_lookup(request.name(), request.version());
    absl::StatusOr<std::string> source = ResolveEnsureSource(request, registry);
    if (source.ok()) return source;
    metrics_.CountEnsure(EnsureResult::kError);
    if (absl::IsFailedPrecondition(source.status())) {
      metrics_.CountFallback(FallbackReason::kSourceRefused);
    }
    spdlog::info("ensure refused: source {}", LogFields()
                                                  .Add("model", request.name())
                                                  .Add("version", request.version())
                                                  .Add("source", request.source())
                                                  .Add("registered", registry.source)
                                                  .Add("error", source.status())
                                                  .Add("next", "the client is told the error"));
    return source.status();
  }

  // How the cache answered: the error, or the READY progress (after the holder's lease).
  grpc::Status Answer(const v1::EnsureRequest& request,
                      const absl::StatusOr<v1::EnsureProgress>& result,
                      grpc::ServerWriter<v1::EnsureProgress>* writer) {
    if (!result.ok()) {
      metrics_.CountEnsure(EnsureResult::kError);
      spdlog::info("ensure failed {}", LogFields()
                                           .Add("model", request.name())
                                           .Add("version", request.version())
                                           .Add("source", request.source())
                                           .Add("error", result.status())
                                           .Add("next", "the client is told the error"));
      return ToGrpcStatus(result.status());
    }
    if (!request.holder().empty() && options_.pod_leases != nullptr) {
      const bool had = options_.pod_leases->LiveLeases(request.name(), request.version()) > 0;
      options_.pod_leases->Hold(request.name(), request.version(), request.holder());
      if (!had && options_.on_leases_changed) options_.on_leases_changed();
    }
    metrics_.CountEnsure(result->hit() ? EnsureResult::kHit : EnsureResult::kMiss);
    if (!result->hit() && options_.on_model_published) options_.on_model_published();
    spdlog::debug("ensure {} {}", result->hit() ? "hit" : "miss",
                  LogFields()
                      .Add("model", request.name())
                      .Add("version", request.version())
                      .Add("path", result->path()));
    writer->Write(*result);
    return grpc::Status::OK;
  }

  ModelCache& cache_;
  AgentMetrics& metrics_;
  AgentServiceOptions options_;
  FillTracker fills_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAgentService(ModelCache& cache, AgentMetrics& metrics,
                                                AgentServiceOptions options) {
  return std::make_unique<AgentService>(cache, metrics, options);
}

}  // namespace modelcache
