#include "coordinator/service.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "common/log_fields.h"
#include "common/metrics_http_server.h"
#include "common/names.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "common/uri.h"
#include "coordinator/agent_stream.h"
#include "coordinator/auth.h"
#include "coordinator/claims/claims_controller.h"
#include "coordinator/webhook/webhook_server.h"
#include "coordinator/db/store.h"
#include "coordinator/fill_leases.h"
#include "coordinator/kube_auth/caller_auth.h"
#include "coordinator/metrics.h"
#include "coordinator/policy/purge_plan.h"
#include "coordinator/policy/source_rules.h"
#include "coordinator/policy/watermark_watch.h"
#include "coordinator/room/room_on_demand.h"
#include "modelcache/v1/coordinator.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(fmt::format("{}: cannot open", path));
  std::stringstream buffer;
  buffer << file.rdbuf();
  return buffer.str();
}

absl::Status ValidateModelRef(std::string_view name, std::string_view version,
                              bool version_required) {
  RETURN_IF_ERROR(ValidateModelName(name));
  if (!version.empty() || version_required) RETURN_IF_ERROR(ValidateModelVersion(version));
  return absl::OkStatus();
}

// The registry stores and compares sources in one spelling (common/uri.h). `what` names the
// field in the error ("set-source: source is empty").
absl::StatusOr<std::string> NormalizedSource(std::string_view what, std::string_view uri) {
  if (uri.empty()) return absl::InvalidArgumentError(fmt::format("{} is empty", what));
  absl::StatusOr<std::string> normalized = NormalizeSourceUri(uri);
  if (!normalized.ok()) {
    return absl::Status(normalized.status().code(),
                        fmt::format("{}: {}", what, normalized.status().message()));
  }
  return normalized;
}

absl::Status ValidateAuditKind(std::string_view kind) {
  if (kind.empty() || kind == "purge" || kind == "source" || kind == "source-prefix") {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(fmt::format(
      "audit: unknown kind \"{}\" (want purge, source or source-prefix)", kind));
}

// MakeRoom waits at most this long for the purges, whatever the caller's deadline.
constexpr std::chrono::seconds kMaxRoomWait{60};

// Models with a live lease on `volume_id`: agent-reported (any node) plus coordinator leases
// for that volume or for every volume.
v1::VolumeLeasesResponse LiveLeasesOn(const Snapshot& snapshot, const std::string& volume_id,
                                      Clock::TimePoint now) {
  std::map<std::pair<std::string, std::string>, uint32_t> leases;
  for (const CachedCopy& copy : snapshot.copies) {
    if (copy.volume_id == volume_id && copy.agent_leases > 0) {
      leases[{copy.name, copy.version}] += copy.agent_leases;
    }
  }
  for (const LeaseRecord& lease : snapshot.leases) {
    if (lease.expires > now && (lease.volume_id.empty() || lease.volume_id == volume_id)) {
      ++leases[{lease.name, lease.version}];
    }
  }
  v1::VolumeLeasesResponse response;
  for (const auto& [key, count] : leases) {
    v1::LeasedModel* model = response.add_models();
    model->set_name(key.first);
    model->set_version(key.second);
    model->set_live_leases(count);
  }
  return response;
}

}  // namespace

// Connect runs on gRPC's callback API (AgentStreams: no thread per agent); the admin RPCs are
// synchronous.
class CoordinatorServer::Impl final
    : public v1::Coordinator::WithCallbackMethod_Connect<v1::Coordinator::Service> {
 public:
  Impl(CoordinatorConfig config, const Clock& clock, std::unique_ptr<CoordinatorStore> store,
       std::unique_ptr<kube_auth::CallerAuth> auth)
      : config_(std::move(config)), clock_(clock), store_(std::move(store)),
        auth_(std::move(auth)) {
    policy_.purge_unused_after = config_.storage.purge_unused_after;
    policy_.high_watermark = config_.high_watermark;
    policy_.low_watermark = config_.low_watermark;
    policy_.default_quota_bytes = config_.storage.storage_size_bytes;
  }

  // /metrics, /healthz and /readyz (listening, and the database answers a query).
  absl::Status StartMetrics() {
    if (config_.metrics_address.empty()) return absl::OkStatus();
    MetricsHttpOptions options{.address = config_.metrics_address,
                               .ready = [this] { return Ready(); },
                               .before_scrape = [this] { RefreshStoreMetrics(); }};
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(std::move(options), *registry_);
    if (!http.ok()) {
      return absl::Status(http.status().code(),
                          fmt::format("coordinator.metricsAddress: {}", http.status().message()));
    }
    http_ = *std::move(http);
    return absl::OkStatus();
  }

  int MetricsPort() const { return http_ ? http_->Port() : 0; }

  // The cache claim copies (kubernetes.enabled): never waits for the API server.
  absl::Status StartClaims() {
    if (!config_.kubernetes.enabled) return absl::OkStatus();
    ASSIGN_OR_RETURN(claims_, claims::ClaimsController::Create(config_.kubernetes, config_.storage, clock_, *registry_));
    claims_->Start();
    return absl::OkStatus();
  }
  claims::ClaimsController* Claims() { return claims_.get(); }

  // The admission webhook (webhook.enabled); every admitted pod's namespace keeps its claim copy.
  absl::Status StartWebhook() {
    if (!config_.webhook.enabled) return absl::OkStatus();
    webhook::WebhookServerOptions options{
        .address = config_.webhook.listen,
        .tls_cert_file = config_.webhook.tls_cert_file,
        .tls_key_file = config_.webhook.tls_key_file,
        .injection = config_.webhook.injection,
        .admitted = [this](std::string_view namespace_name) { WebhookAdmitted(namespace_name); }};
    ASSIGN_OR_RETURN(webhook_, webhook::WebhookServer::Start(std::move(options)));
    return absl::OkStatus();
  }
  int WebhookPort() const { return webhook_ ? webhook_->Port() : 0; }
  void WebhookAdmitted(std::string_view namespace_name) {
    if (!claims_ || namespace_name.empty()) return;
    absl::Status asked = claims_->NamespaceAsked(namespace_name, clock_.Now());
    if (!asked.ok()) {
      spdlog::warn("claim copy not recorded for an admitted pod {}",
                   LogFields().Add("namespace", namespace_name).Add("error", asked).Add("next", "the next resync or ask retries"));
    }
  }

  bool Ready() {
    if (!listening_.load()) return false;
    absl::Status ping = store_->Ping();
    if (!ping.ok()) {
      spdlog::warn("readiness check failed {}",
                   LogFields().Add("error", ping).Add("next", "/readyz answers 503"));
    }
    return ping.ok();
  }

  absl::Status Listen() {
    std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
    if (!config_.tls.cert_file.empty()) {
      grpc::SslServerCredentialsOptions options;
      ASSIGN_OR_RETURN(std::string cert, ReadWholeFile(config_.tls.cert_file));
      ASSIGN_OR_RETURN(std::string key, ReadWholeFile(config_.tls.key_file));
      options.pem_key_cert_pairs.push_back({key, cert});
      if (!config_.tls.client_ca_file.empty()) {
        ASSIGN_OR_RETURN(options.pem_root_certs, ReadWholeFile(config_.tls.client_ca_file));
        options.client_certificate_request =
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      }
      credentials = grpc::SslServerCredentials(options);
    }
    // The quota rule runs at once when a report takes a volume over its high watermark.
    streams_.OnUsageStored([this](const std::set<std::string>& volumes) { WatchWatermarks(volumes); });
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config_.listen, credentials, &port_);
    builder.RegisterService(this);
    grpc::ResourceQuota quota("coordinator");
    quota.SetMaxThreads(config_.max_threads);
    builder.SetResourceQuota(quota);
    // Dead agents are noticed within a minute even without traffic.
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(fmt::format("coordinator: cannot listen on {}", config_.listen));
    }
    spdlog::info("coordinator listening {}",
                 LogFields()
                     .Add("listen", config_.listen)
                     .Add("port", port_)
                     .Add("tls", config_.tls.cert_file.empty() ? "off" : "on")
                     .Add("auth", auth_ ? auth_->Describe() : "off"));
    policy_thread_ = std::thread([this] { PolicyLoop(); });
    listening_ = true;
    return absl::OkStatus();
  }

  int Port() const { return port_; }

  void Shutdown() {
    listening_ = false;
    {
      std::lock_guard lock(loop_mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    loop_wake_.notify_all();
    if (claims_) claims_->Stop();
    fill_leases_.Shutdown();
    if (policy_thread_.joinable()) policy_thread_.join();
    streams_.CancelAll();
    // Returns once every stream finished, which the streams' worker does: stop it after.
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    streams_.Stop();
  }

  absl::Status RunPolicyOnce() {
    const auto started = std::chrono::steady_clock::now();
    absl::Status status = RunPolicyPass();
    metrics_.ObservePolicyPass(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        status.ok(), ToUnixMillis(clock_.Now()) / 1000);
    return status;
  }

  absl::Status RunPolicyPass() {
    ASSIGN_OR_RETURN(Snapshot snapshot, store_->LoadSnapshot());
    PurgePlan plan = Plan(snapshot, policy_, clock_.Now());
    std::set<std::string> volumes;
    for (const PurgeDecision& decision : plan.decisions) {
      ASSIGN_OR_RETURN(bool open,
                       store_->HasOpenPurge(decision.volume_id, decision.name, decision.version));
      if (open) continue;
      ASSIGN_OR_RETURN(v1::Command command,
                       EnqueuePurge(decision.volume_id, decision.name, decision.version,
                                    fmt::format("{}: {}", PurgeReasonName(decision.reason),
                                                decision.explanation)));
      metrics_.CountPurgeDecision(PurgeReasonName(decision.reason));
      spdlog::info("purge queued {}", LogFields()
                                          .Add("model", decision.name)
                                          .Add("version", decision.version)
                                          .Add("volume", decision.volume_id)
                                          .Add("command", command.id())
                                          .Add("reason", PurgeReasonName(decision.reason))
                                          .Add("bytes", decision.size_bytes)
                                          .Add("why", decision.explanation));
      volumes.insert(decision.volume_id);
    }
    DispatchAll();
    return absl::OkStatus();
  }

  // ------------------------------------------------------------ agent stream

  grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* context) override {
    absl::StatusOr<Principal> principal = Check(context, Permission::kAgentStream, "Connect");
    return streams_.Open(context, principal.ok() ? principal->name : std::string(),
                         principal.status());
  }

  // ------------------------------------------------------------ admin RPCs

  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest*,
                          v1::ListModelsResponse* response) override {
    return Handle(context, Permission::kRead, "ListModels", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(std::vector<v1::ModelInfo> models, store_->ListModels(Now()));
      for (v1::ModelInfo& model : models) *response->add_models() = std::move(model);
      return absl::OkStatus();
    });
  }

  grpc::Status ShowModel(grpc::ServerContext* context, const v1::ShowModelRequest* request,
                         v1::ModelInfo* response) override {
    return Handle(context, Permission::kRead, "ShowModel", [&]() -> absl::Status {
      RETURN_IF_ERROR(ValidateModelName(request->name()));
      ASSIGN_OR_RETURN(*response, store_->GetModel(request->name(), Now()));
      return absl::OkStatus();
    });
  }

  grpc::Status Usage(grpc::ServerContext* context, const v1::UsageRequest*,
                     v1::UsageResponse* response) override {
    return Handle(context, Permission::kRead, "Usage", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(*response, store_->Usage(policy_.default_quota_bytes));
      return absl::OkStatus();
    });
  }

  grpc::Status Nodes(grpc::ServerContext* context, const v1::NodesRequest*,
                     v1::NodesResponse* response) override {
    return Handle(context, Permission::kRead, "Nodes", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(*response, store_->Nodes());
      return absl::OkStatus();
    });
  }

  grpc::Status SetCaching(grpc::ServerContext* context, const v1::SetCachingRequest* request,
                          v1::ModelInfo* response) override {
    return Handle(context, Permission::kAdmin, "SetCaching", [&]() -> absl::Status {
      RETURN_IF_ERROR(ValidateModelRef(request->name(), request->version(), false));
      ASSIGN_OR_RETURN(*response, store_->SetCaching(request->name(), request->version(),
                                                     request->enabled(), Now()));
      LogFields changed;
      changed.Add("model", request->name());
      if (!request->version().empty()) changed.Add("version", request->version());
      spdlog::info("caching setting changed {}",
                   changed.Add("caching", request->enabled() ? "enabled" : "disabled"));
      BroadcastPolicy();
      return absl::OkStatus();
    });
  }

  grpc::Status SetPin(grpc::ServerContext* context, const v1::SetPinRequest* request,
                      v1::ModelInfo* response) override {
    return Handle(context, Permission::kAdmin, "SetPin", [&]() -> absl::Status {
      RETURN_IF_ERROR(ValidateModelRef(request->name(), request->version(), false));
      ASSIGN_OR_RETURN(*response, store_->SetPin(request->name(), request->version(),
                                                 request->pinned(), Now()));
      return absl::OkStatus();
    });
  }

  grpc::Status DeleteModel(grpc::ServerContext* context, const v1::DeleteModelRequest* request,
                           v1::PurgeResponse* response) override {
    return Handle(context, Permission::kAdmin, "DeleteModel", [&]() -> absl::Status {
      RETURN_IF_ERROR(ValidateModelName(request->name()));
      RETURN_IF_ERROR(store_->MarkDeleted(request->name(), Now()));
      spdlog::info("model deleted from the registry {}", LogFields().Add("model", request->name()));
      BroadcastPolicy();
      ASSIGN_OR_RETURN(Snapshot snapshot, store_->LoadSnapshot());
      PurgePlan plan = Plan(snapshot, policy_, clock_.Now());
      for (const PurgeDecision& decision : plan.decisions) {
        if (decision.name != request->name() || decision.reason != PurgeReason::kDeleted) continue;
        RETURN_IF_ERROR(AddPurgeAction(decision, "deleted", response->add_actions()));
      }
      for (const PurgeDecision& held : plan.held_by_lease) {
        if (held.name != request->name()) continue;
        FillAction(held, "deleted", response->add_skipped());
      }
      for (const PurgeDecision& left : plan.draining) {
        if (left.name != request->name()) continue;
        FillAction(left, "deleted", response->add_skipped());
      }
      DispatchAll();
      return absl::OkStatus();
    });
  }

  grpc::Status Purge(grpc::ServerContext* context, const v1::PurgeRequest* request,
                     v1::PurgeResponse* response) override {
    return Handle(context, Permission::kAdmin, "Purge", [&]() -> absl::Status {
      RETURN_IF_ERROR(ValidateModelRef(request->name(), request->version(), false));
      ASSIGN_OR_RETURN(Snapshot snapshot, store_->LoadSnapshot());
      const Clock::TimePoint now = clock_.Now();
      for (const CachedCopy& copy : snapshot.copies) {
        if (copy.name != request->name()) continue;
        if (!request->version().empty() && copy.version != request->version()) continue;
        PurgeDecision decision{copy.volume_id, copy.name, copy.version, copy.size_bytes,
                               PurgeReason::kUnused, "requested by an admin"};
        if (HasLease(copy, snapshot, now)) {
          decision.explanation = "in use: live lease";
          FillAction(decision, "manual", response->add_skipped());
          continue;
        }
        if (copy.draining) {
          // No agent serves the volume, so no agent would run the command.
          decision.explanation = fmt::format(
              "volume {} is only mounted as an extra volume: empty it with modelcachectl "
              "cleanup --volume {}",
              copy.volume_id, copy.volume_id);
          FillAction(decision, "manual", response->add_skipped());
          continue;
        }
        RETURN_IF_ERROR(AddPurgeAction(decision, "manual", response->add_actions()));
      }
      DispatchAll();
      return absl::OkStatus();
    });
  }

  grpc::Status PurgeDryRun(grpc::ServerContext* context, const v1::PurgeDryRunRequest* request,
                           v1::PurgeResponse* response) override {
    return Handle(context, Permission::kRead, "PurgeDryRun", [&]() -> absl::Status {
      if (request->room_bytes() > 0) {
        ASSIGN_OR_RETURN(*response, room_.DryRun(request->volume_id(), request->room_bytes()));
        return absl::OkStatus();
      }
      ASSIGN_OR_RETURN(Snapshot snapshot, store_->LoadSnapshot());
      PurgePlan plan = Plan(snapshot, policy_, clock_.Now());
      for (const PurgeDecision& decision : plan.decisions) {
        FillAction(decision, PurgeReasonName(decision.reason), response->add_actions());
      }
      for (const PurgeDecision& held : plan.held_by_lease) {
        FillAction(held, PurgeReasonName(held.reason), response->add_skipped());
      }
      for (const PurgeDecision& left : plan.draining) {
        FillAction(left, PurgeReasonName(left.reason), response->add_skipped());
      }
      return absl::OkStatus();
    });
  }

  grpc::Status MakeRoom(grpc::ServerContext* context, const v1::MakeRoomRequest* request,
                        v1::PurgeResponse* response) override {
    return Handle(context, Permission::kAgentStream, "MakeRoom", [&]() -> absl::Status {
      // Answer before the caller gives up, so that it hears why.
      auto left = context->deadline() - std::chrono::system_clock::now() -
                  std::chrono::milliseconds(500);
      left = std::clamp<std::chrono::system_clock::duration>(left, {}, kMaxRoomWait);
      ASSIGN_OR_RETURN(*response, room_.Make(*request, std::chrono::steady_clock::now() + left));
      return absl::OkStatus();
    });
  }

  grpc::Status VolumeLeases(grpc::ServerContext* context, const v1::VolumeLeasesRequest* request,
                            v1::VolumeLeasesResponse* response) override {
    return Handle(context, Permission::kLease, "VolumeLeases", [&]() -> absl::Status {
      if (request->volume_id().empty()) {
        return absl::InvalidArgumentError("volume leases: volume_id is empty");
      }
      ASSIGN_OR_RETURN(Snapshot snapshot, store_->LoadSnapshot());
      *response = LiveLeasesOn(snapshot, request->volume_id(), clock_.Now());
      return absl::OkStatus();
    });
  }

  grpc::Status Prefetch(grpc::ServerContext* context, const v1::PrefetchRequest* request,
                        v1::PrefetchResponse* response) override {
    return HandleAs(context, Permission::kMaintain, "Prefetch",
                    [&](const Principal& principal) -> absl::Status {
      const std::string& name = request->name();
      const std::string& version = request->version();
      RETURN_IF_ERROR(ValidateModelRef(name, version, true));
      ASSIGN_OR_RETURN(bool enabled, CachingEnabled(name, version));
      if (!enabled) {
        return absl::FailedPreconditionError(
            fmt::format("model {}@{}: caching is disabled", name, version));
      }
      // The source: the registered one; one given must be it, or becomes it when there is none.
      ASSIGN_OR_RETURN(SourceEntry entry, store_->GetSourceEntry(name, version));
      std::string source;
      bool register_source = false;
      if (request->source().empty()) {
        if (!entry.source) {
          return absl::FailedPreconditionError(fmt::format(
              "model {}@{}: no source is registered (register one with: modelcachectl models "
              "set-source {}@{} URI, or prefetch --source URI)",
              name, version, name, version));
        }
        source = *entry.source;
      } else {
        ASSIGN_OR_RETURN(source, NormalizedSource("prefetch: source", request->source()));
        ASSIGN_OR_RETURN(register_source, DecideSourceChange(name, version, source, entry,
                                                             SourceChange::kRegisterOnly));
      }
      std::set<std::string> volumes = streams_.ConnectedVolumes(request->volume_id());
      if (volumes.empty()) {
        return absl::FailedPreconditionError(
            request->volume_id().empty()
                ? std::string("prefetch: no agent is connected")
                : fmt::format("prefetch: no agent of volume {} is connected", request->volume_id()));
      }
      if (register_source) {
        // Checked again in the store's transaction: another caller may have registered one.
        RETURN_IF_ERROR(store_->SetSource(name, version, source, SourceChange::kRegisterOnly,
                                          principal.name, Now())
                            .status());
        LogSourceChange("prefetch", name, version, source, principal);
        // Before the commands: the agents hold the registry that names this source.
        BroadcastPolicy();
      }
      response->set_source(source);
      for (const std::string& volume : volumes) {
        v1::Command command;
        command.mutable_prefetch()->set_name(name);
        command.mutable_prefetch()->set_version(version);
        command.mutable_prefetch()->set_source(source);
        ASSIGN_OR_RETURN(command, store_->EnqueueCommand(volume, command, Now()));
        response->add_command_ids(command.id());
        response->add_volume_ids(volume);
      }
      DispatchAll();
      return absl::OkStatus();
    });
  }

  grpc::Status SetSource(grpc::ServerContext* context, const v1::SetSourceRequest* request,
                         v1::ModelInfo* response) override {
    return HandleAs(context, Permission::kMaintain, "SetSource",
                    [&](const Principal& principal) -> absl::Status {
      RETURN_IF_ERROR(ValidateModelRef(request->name(), request->version(), true));
      ASSIGN_OR_RETURN(std::string source, NormalizedSource("set-source: source", request->source()));
      ASSIGN_OR_RETURN(*response, store_->SetSource(request->name(), request->version(), source,
                                                    SourceChange::kSet, principal.name, Now()));
      LogSourceChange("set-source", request->name(), request->version(), source,
                      principal);
      BroadcastPolicy();
      return absl::OkStatus();
    });
  }

  grpc::Status SetSourcePrefix(grpc::ServerContext* context,
                               const v1::SetSourcePrefixRequest* request,
                               v1::ModelInfo* response) override {
    return HandleAs(context, Permission::kMaintain, "SetSourcePrefix",
                    [&](const Principal& principal) -> absl::Status {
      RETURN_IF_ERROR(ValidateModelName(request->name()));
      std::string prefix;
      if (!request->prefix().empty()) {
        ASSIGN_OR_RETURN(prefix, NormalizedSource("set-source-prefix: prefix", request->prefix()));
      }
      ASSIGN_OR_RETURN(*response, store_->SetSourcePrefix(request->name(), prefix,
                                                          principal.name, Now()));
      spdlog::info("registry source prefix set {}",
                   LogFields()
                       .Add("model", request->name())
                       .Add("prefix", prefix.empty() ? "none" : prefix)
                       .Add("principal", principal.name));
      return absl::OkStatus();
    });
  }

  grpc::Status AcquireLease(grpc::ServerContext* context, const v1::LeaseRequest* request,
                            v1::Lease* response) override {
    return LeaseCall(context, *request, response, "AcquireLease", false);
  }
  grpc::Status RenewLease(grpc::ServerContext* context, const v1::LeaseRequest* request,
                          v1::Lease* response) override {
    return LeaseCall(context, *request, response, "RenewLease", true);
  }
  grpc::Status ReleaseLease(grpc::ServerContext* context, const v1::LeaseRequest* request,
                            v1::Lease* response) override {
    return Handle(context, Permission::kLease, "ReleaseLease", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(*response, store_->ReleaseLease(*request));
      return absl::OkStatus();
    });
  }

  grpc::Status Audit(grpc::ServerContext* context, const v1::AuditRequest* request,
                     v1::AuditResponse* response) override {
    return Handle(context, Permission::kRead, "Audit", [&]() -> absl::Status {
      if (!request->name().empty()) RETURN_IF_ERROR(ValidateModelName(request->name()));
      RETURN_IF_ERROR(ValidateAuditKind(request->kind()));
      const size_t limit = request->limit() == 0 ? 100 : request->limit();
      ASSIGN_OR_RETURN(std::vector<AuditEntry> entries,
                       store_->Audit(limit, request->name(), request->kind()));
      for (const AuditEntry& entry : entries) {
        v1::AuditRecord* record = response->add_records();
        record->set_at_unix_ms(entry.at_unix_ms);
        record->set_volume_id(entry.volume_id);
        record->set_name(entry.name);
        record->set_version(entry.version);
        record->set_reason(entry.reason);
        record->set_bytes_freed(entry.bytes_freed);
        record->set_node_name(entry.node_name);
        record->set_command_id(entry.command_id);
        record->set_kind(entry.kind);
        record->set_principal(entry.principal);
      }
      return absl::OkStatus();
    });
  }

  grpc::Status Namespaces(grpc::ServerContext* context, const v1::NamespacesRequest*,
                          v1::NamespacesResponse* response) override {
    return Handle(context, Permission::kRead, "Namespaces", [&]() -> absl::Status {
      if (claims_) claims::FillNamespacesResponse(claims_->View(), response);
      return absl::OkStatus();  // enabled=false says that kubernetes.enabled is off
    });
  }

  // Fill leases (coordinator/fill_leases.h).
  grpc::Status AcquireFillLease(grpc::ServerContext* context, const v1::FillLeaseRequest* request,
                                v1::FillLease* response) override {
    return Handle(context, Permission::kLease, "AcquireFillLease", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(*response, fill_leases_.Acquire(*request));
      return absl::OkStatus();
    });
  }
  grpc::Status RenewFillLease(grpc::ServerContext* context, const v1::FillLeaseRequest* request,
                              v1::FillLease* response) override {
    return Handle(context, Permission::kLease, "RenewFillLease", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(*response, fill_leases_.Renew(*request));
      return absl::OkStatus();
    });
  }
  grpc::Status ReleaseFillLease(grpc::ServerContext* context, const v1::FillLeaseRequest* request,
                                v1::FillLease* response) override {
    return Handle(context, Permission::kLease, "ReleaseFillLease", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(*response, fill_leases_.Release(*request));
      return absl::OkStatus();
    });
  }
  grpc::Status WatchFillLease(grpc::ServerContext* context,
                              const v1::WatchFillLeaseRequest* request,
                              v1::FillLease* response) override {
    return Handle(context, Permission::kLease, "WatchFillLease", [&]() -> absl::Status {
      ASSIGN_OR_RETURN(*response,
                       fill_leases_.Watch(*request, [context] { return context->IsCancelled(); }));
      return absl::OkStatus();
    });
  }

 private:
  int64_t Now() const { return ToUnixMillis(clock_.Now()); }

  absl::StatusOr<Principal> Check(grpc::ServerContextBase* context, Permission permission,
                                  std::string_view what) {
    if (!auth_) return Principal{"anonymous", Role::kAdmin};
    std::string_view header;
    const auto& metadata = context->client_metadata();
    auto found = metadata.find("authorization");
    if (found != metadata.end()) header = std::string_view(found->second.data(), found->second.size());
    // The tokens file, then the Kubernetes reviews (bounded wait: coordinator/kube_auth/).
    absl::StatusOr<Principal> principal = auth_->Check(header, permission, what);
    if (!principal.ok()) {
      metrics_.auth_refused.Increment();
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
  grpc::Status Handle(grpc::ServerContext* context, Permission permission, std::string_view what,
                      Body body) {
    absl::StatusOr<Principal> principal = Check(context, permission, what);
    if (!principal.ok()) return ToGrpc(principal.status());
    return ToGrpc(body());
  }
  // Handle, for a body that records who called (registry changes).
  template <typename Body>
  grpc::Status HandleAs(grpc::ServerContext* context, Permission permission,
                        std::string_view what, Body body) {
    absl::StatusOr<Principal> principal = Check(context, permission, what);
    if (!principal.ok()) return ToGrpc(principal.status());
    return ToGrpc(body(*principal));
  }

  // `via`: the call that set it ("set-source", "prefetch").
  static void LogSourceChange(std::string_view via, std::string_view name,
                              std::string_view version, std::string_view source,
                              const Principal& principal) {
    spdlog::info("registry source set {}", LogFields()
                                               .Add("model", name)
                                               .Add("version", version)
                                               .Add("source", source)
                                               .Add("principal", principal.name)
                                               .Add("via", via));
  }

  grpc::Status LeaseCall(grpc::ServerContext* context, const v1::LeaseRequest& request,
                         v1::Lease* response, std::string_view what, bool renew_only) {
    return Handle(context, Permission::kLease, what, [&]() -> absl::Status {
      RETURN_IF_ERROR(ValidateModelRef(request.name(), request.version(), true));
      if (request.holder().empty()) return absl::InvalidArgumentError("lease: holder is empty");
      ASSIGN_OR_RETURN(*response, store_->PutLease(request, Now(), renew_only));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<bool> CachingEnabled(const std::string& name, const std::string& version) {
    absl::StatusOr<v1::ModelInfo> model = store_->GetModel(name, Now());
    if (absl::IsNotFound(model.status())) return config_.default_caching_enabled;
    if (!model.ok()) return model.status();
    for (const v1::VersionInfo& info : model->versions()) {
      if (info.version() == version) return info.caching_enabled();
    }
    return model->caching_enabled();
  }

  static bool HasLease(const CachedCopy& copy, const Snapshot& snapshot, Clock::TimePoint now) {
    if (copy.agent_leases > 0) return true;
    for (const LeaseRecord& lease : snapshot.leases) {
      if (lease.name == copy.name && lease.version == copy.version && lease.expires > now &&
          (lease.volume_id.empty() || lease.volume_id == copy.volume_id)) {
        return true;
      }
    }
    return false;
  }

  static void FillAction(const PurgeDecision& decision, std::string_view reason,
                         v1::PurgeAction* action) {
    action->set_volume_id(decision.volume_id);
    action->set_name(decision.name);
    action->set_version(decision.version);
    action->set_size_bytes(decision.size_bytes);
    action->set_reason(std::string(reason));
    action->set_explanation(decision.explanation);
  }

  absl::StatusOr<v1::Command> EnqueuePurge(const std::string& volume, const std::string& name,
                                           const std::string& version, const std::string& reason) {
    v1::Command command;
    command.mutable_purge()->set_name(name);
    command.mutable_purge()->set_version(version);
    command.mutable_purge()->set_reason(reason);
    return store_->EnqueueCommand(volume, command, Now());
  }

  absl::Status AddPurgeAction(const PurgeDecision& decision, std::string_view reason,
                              v1::PurgeAction* action) {
    FillAction(decision, reason, action);
    ASSIGN_OR_RETURN(bool open,
                     store_->HasOpenPurge(decision.volume_id, decision.name, decision.version));
    if (open) return absl::OkStatus();  // already on its way
    ASSIGN_OR_RETURN(v1::Command command,
                     EnqueuePurge(decision.volume_id, decision.name, decision.version,
                                  fmt::format("{}: {}", reason, decision.explanation)));
    action->set_command_id(command.id());
    metrics_.CountPurgeDecision(reason);
    spdlog::info("purge queued {}", LogFields()
                                        .Add("model", decision.name)
                                        .Add("version", decision.version)
                                        .Add("volume", decision.volume_id)
                                        .Add("command", command.id())
                                        .Add("reason", reason)
                                        .Add("bytes", decision.size_bytes)
                                        .Add("why", decision.explanation));
    return absl::OkStatus();
  }

  void BroadcastPolicy() { streams_.BroadcastPolicy(); }
  // One live agent per volume gets that volume's pending commands.
  void DispatchAll() { streams_.DispatchAll(); }

  // Before a scrape: the gauges the database knows. At most one read a second, as
  // several Prometheus servers may scrape and the query walks every report.
  void RefreshStoreMetrics() {
    constexpr std::chrono::seconds kMinInterval{1};
    std::lock_guard lock(store_metrics_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (store_metrics_read_ != std::chrono::steady_clock::time_point() &&
        now - store_metrics_read_ < kMinInterval) {
      return;
    }
    store_metrics_read_ = now;
    CoordinatorMetrics::StoreState state;
    absl::StatusOr<CoordinatorStore::Gauges> gauges = store_->ReadGauges();
    if (gauges.ok()) {
      state.volumes = gauges->volumes;
      state.models_per_volume = std::move(gauges->models_per_volume);
      state.purges_outstanding = gauges->purges_outstanding;
      state.purges_failed = gauges->purges_failed;
    } else {
      spdlog::warn("metrics read failed {}",
                   LogFields().Add("error", gauges.status()).Add(
                       "next", "database gauges keep their last values"));
    }
    state.sqlite_errors = store_->SqliteErrors();
    if (gauges.ok()) {
      metrics_.SetStoreState(state);
    } else {
      // Only the error counter moves; the gauges keep their last values.
      CoordinatorMetrics::StoreState errors_only = last_store_state_;
      errors_only.sqlite_errors = state.sqlite_errors;
      metrics_.SetStoreState(errors_only);
      return;
    }
    last_store_state_ = std::move(state);
  }

  // On the streams' worker thread, which owns watermarks_.
  void WatchWatermarks(const std::set<std::string>& volumes) {
    absl::StatusOr<v1::UsageResponse> usage = store_->Usage(policy_.default_quota_bytes);
    if (!usage.ok()) {
      spdlog::warn("usage read for the quota rule failed {}",
                   LogFields().Add("error", usage.status()).Add(
                       "next", "the quota rule waits for its scheduled pass"));
      return;
    }
    bool crossed = false;
    for (const v1::VolumeUsage& volume : usage->volumes()) {
      if (volumes.count(volume.volume_id()) == 0) continue;
      if (!watermarks_.Observe(volume.volume_id(), volume.used_bytes(), volume.quota_bytes(),
                               policy_.high_watermark)) {
        continue;
      }
      spdlog::info("volume over its high watermark {}",
                   LogFields()
                       .Add("volume", volume.volume_id())
                       .Add("used", volume.used_bytes())
                       .Add("quota", volume.quota_bytes())
                       .Add("next", "policy pass now"));
      crossed = true;
    }
    if (!crossed) return;
    {
      std::lock_guard lock(loop_mutex_);
      run_now_ = true;
    }
    loop_wake_.notify_all();
  }

  void PolicyLoop() {
    std::unique_lock lock(loop_mutex_);
    while (!stopping_) {
      loop_wake_.wait_for(lock, config_.storage.check_unused_every,
                          [this] { return stopping_ || run_now_; });
      if (stopping_) break;
      run_now_ = false;
      lock.unlock();
      absl::Status status = RunPolicyOnce();
      if (!status.ok()) {
        spdlog::error("policy pass failed {}",
                      LogFields().Add("error", status).Add(
                          "next", fmt::format("retried in {} s", config_.storage.check_unused_every.count())));
      }
      lock.lock();
    }
  }

  const CoordinatorConfig config_;
  const Clock& clock_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  CoordinatorMetrics metrics_{*registry_};
  std::unique_ptr<CoordinatorStore> store_;
  const std::unique_ptr<kube_auth::CallerAuth> auth_;  // null: no authentication
  PurgePolicy policy_;
  // Before server_: a server that was not shut down waits in its destructor for the streams,
  // which the worker finishes.
  AgentStreams streams_{*store_, clock_,
                        AgentStreamMetrics{&metrics_.agents_connected, &metrics_.usage_reports,
                                           &metrics_.report_seconds, &metrics_.purges_done,
                                           &metrics_.bytes_freed}};
  RoomOnDemand room_{*store_, clock_,
                     RoomOnDemandHooks{
                         .dispatch = [this] { DispatchAll(); },
                         .count_decision = [this](std::string_view reason) {
                           metrics_.CountPurgeDecision(reason);
                         }}};
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  FillLeaseTable fill_leases_{clock_};
  std::unique_ptr<claims::ClaimsController> claims_;  // null unless kubernetes.enabled

  std::mutex loop_mutex_;
  std::condition_variable loop_wake_;
  bool stopping_ = false;
  bool run_now_ = false;  // guarded by loop_mutex_: a report crossed a high watermark
  std::thread policy_thread_;
  WatermarkWatch watermarks_;  // the streams' worker thread only

  std::atomic<bool> listening_{false};
  std::mutex store_metrics_mutex_;
  std::chrono::steady_clock::time_point store_metrics_read_;  // guarded by store_metrics_mutex_
  CoordinatorMetrics::StoreState last_store_state_;           // guarded by store_metrics_mutex_
  // Last: stopped first, while everything its handlers use still exists.
  std::unique_ptr<webhook::WebhookServer> webhook_;
  std::unique_ptr<MetricsHttpServer> http_;
};

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CoordinatorServer::~CoordinatorServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const CoordinatorConfig& config, const Clock& clock) {
  ASSIGN_OR_RETURN(std::unique_ptr<kube_auth::CallerAuth> auth, kube_auth::CallerAuth::Create(config, clock));
  if (!auth) {
    spdlog::warn("authentication off {}",
                 LogFields()
                     .Add("error", "neither tokensFile nor kubernetesAuth configured")
                     .Add("next", "every caller is admin (development only)"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<CoordinatorStore> store,
                   CoordinatorStore::Open(config.database, config.default_caching_enabled));
  RETURN_IF_ERROR(store->ResetConnections());
  auto impl = std::make_unique<Impl>(config, clock, std::move(store), std::move(auth));
  RETURN_IF_ERROR(impl->StartClaims());
  RETURN_IF_ERROR(impl->StartMetrics());
  RETURN_IF_ERROR(impl->StartWebhook());
  RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(impl)));
}

int CoordinatorServer::Port() const { return impl_->Port(); }
int CoordinatorServer::MetricsPort() const { return impl_->MetricsPort(); }
int CoordinatorServer::WebhookPort() const { return impl_->WebhookPort(); }
void CoordinatorServer::Shutdown() { impl_->Shutdown(); }
absl::Status CoordinatorServer::RunPolicyOnce() { return impl_->RunPolicyOnce(); }
claims::ClaimsController* CoordinatorServer::CacheClaims() { return impl_->Claims(); }

}  // namespace modelcache
