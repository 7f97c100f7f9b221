#include "coordinator/server.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>

#include "common/fs.h"
#include "common/log_fields.h"
#include "common/metrics_http_server.h"
#include "common/status_annotate.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "coordinator/admin_service.h"
#include "coordinator/agent_facing_service.h"
#include "coordinator/agent_stream.h"
#include "coordinator/claims/claims_controller.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/db/store.h"
#include "coordinator/fill_leases.h"
#include "coordinator/kube_auth/caller_auth.h"
#include "coordinator/agent_facing_service.h"
#include "coordinator/metrics.h"
#include "coordinator/policy_runner.h"
#include "coordinator/purge_commands.h"
#include "coordinator/room/room_on_demand.h"
#include "coordinator/webhook/certificate_keeper.h"
#include "coordinator/webhook/webhook_server.h"
#include "kube/request_log.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

PurgePolicy PurgePolicyFor(const CoordinatorConfig& config) {
  PurgePolicy policy;
  policy.purge_unused_after = config.storage.purge_unused_after;
  policy.high_watermark = config.high_watermark;
  policy.low_watermark = config.low_watermark;
  policy.default_quota_bytes = config.storage.storage_size_bytes;
  return policy;
}

// TLS from coordinator.tls (client certificates required with clientCa), else plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const CoordinatorTlsConfig& tls) {
  if (tls.cert_file.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options;
  ASSIGN_OR_RETURN(std::string cert, ReadFileToString(tls.cert_file));
  ASSIGN_OR_RETURN(std::string key, ReadFileToString(tls.key_file));
  options.pem_key_cert_pairs.push_back({key, cert});
  if (!tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs, ReadFileToString(tls.client_ca_file));
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace

class CoordinatorServer::Impl {
 public:
  Impl(CoordinatorConfig config, const Clock& clock, std::unique_ptr<CoordinatorStore> store,
       std::unique_ptr<kube_auth::CallerAuth> auth)
      : config_(std::move(config)), clock_(clock), store_(std::move(store)),
        auth_(std::move(auth)) {}

  // /metrics, /healthz and /readyz (listening, and the database answers a query).
  absl::Status StartMetrics() {
    if (config_.metrics_address.empty()) return absl::OkStatus();
    MetricsHttpOptions options{.address = config_.metrics_address,
                               .ready = [this] { return Ready(); },
                               .before_scrape = [this] { RefreshStoreMetrics(); }};
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
        MetricsHttpServer::Start(std::move(options), *registry_);
    if (!http.ok()) return Annotate(http.status(), "coordinator.metricsAddress");
    http_ = *std::move(http);
    return absl::OkStatus();
  }

  int MetricsPort() const { return http_ ? http_->Port() : 0; }

  // The cache claim copies (kubernetes.enabled): never waits for the API server.
  absl::Status StartClaims() {
    if (!config_.kubernetes.enabled) return absl::OkStatus();
    ASSIGN_OR_RETURN(claims_, claims::ClaimsController::Create(config_.kubernetes,
                                                               config_.storage, clock_, *registry_));
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
    if (config_.webhook.certificates.managed) {
      absl::StatusOr<kube::KubeConfig> kube_config = kube::LoadKubeConfig(
          {.kubeconfig = config_.kubernetes.kubeconfig}, config_.kubernetes.environment);
      if (!kube_config.ok()) return Annotate(kube_config.status(), "webhook.certificates");
      kube::KubeClientOptions client_options;
      RETURN_IF_ERROR(kube::LogRequestsTo(config_.kubernetes.request_log, client_options));
      ASSIGN_OR_RETURN(std::unique_ptr<kube::KubeClient> client,
                       kube::KubeClient::Create(*std::move(kube_config), std::move(client_options)));
      certificates_ = std::make_unique<webhook::CertificateKeeper>(
          config_.webhook.certificates, std::move(client), clock_,
          [server = webhook_.get()](const webhook::PemPair& serving) { return server->SetCertificate(serving); });
      certificates_->Start();
    }
    return absl::OkStatus();
  }
  int WebhookPort() const { return webhook_ ? webhook_->Port() : 0; }

  bool Ready() {
    if (!listening_.load()) return false;
    absl::Status ping = store_->Ping();
    if (!ping.ok()) {
      spdlog::warn("readiness check failed {}",
                   LogFields().Add("error", ping).Add("next", "/readyz answers 503"));
    }
    return ping.ok();
  }

  // The services over the store, the gRPC server on coordinator.listen, then the policy runner.
  absl::Status Listen() {
    admin_.emplace(config_, runner_.Policy(), clock_, *store_, streams_, purges_, room_,
                   claims_.get());
    service_.emplace(auth_.get(), metrics_.auth_refused, streams_, agents_, *admin_);
    // The quota rule runs at once when a report takes a volume over its high watermark.
    streams_.OnUsageStored(
        [this](const std::set<std::string>& volumes) { runner_.OnUsageStored(volumes); });
    ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                     ServerCredentials(config_.tls));
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config_.listen, credentials, &port_);
    builder.RegisterService(&*service_);
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
    runner_.Start();
    listening_ = true;
    return absl::OkStatus();
  }

  int Port() const { return port_; }

  void Shutdown() {
    listening_ = false;
    if (shut_down_.exchange(true)) return;
    if (claims_) claims_->Stop();
    if (certificates_) certificates_->Stop();
    fill_leases_.Shutdown();
    runner_.Stop();
    streams_.CancelAll();
    // Returns once every stream finished, which the streams' worker does: stop it after.
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    streams_.Stop();
  }

  absl::Status RunPolicyOnce() { return runner_.RunOnce(); }

 private:
  void WebhookAdmitted(std::string_view namespace_name) {
    if (!claims_ || namespace_name.empty()) return;
    absl::Status asked = claims_->NamespaceAsked(namespace_name, clock_.Now());
    if (!asked.ok()) {
      spdlog::warn("claim copy not recorded for an admitted pod {}",
                   LogFields()
                       .Add("namespace", namespace_name)
                       .Add("error", asked)
                       .Add("next", "the next resync or ask retries"));
    }
  }

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
    absl::StatusOr<CoordinatorStore::Gauges> gauges = store_->ReadGauges();
    if (!gauges.ok()) {
      spdlog::warn("metrics read failed {}",
                   LogFields().Add("error", gauges.status()).Add(
                       "next", "database gauges keep their last values"));
      // Only the error counter moves; the gauges keep their last values.
      CoordinatorMetrics::StoreState errors_only = last_store_state_;
      errors_only.sqlite_errors = store_->SqliteErrors();
      metrics_.SetStoreState(errors_only);
      return;
    }
    CoordinatorMetrics::StoreState state;
    state.volumes = gauges->volumes;
    state.models_per_volume = std::move(gauges->models_per_volume);
    state.purges_outstanding = gauges->purges_outstanding;
    state.purges_failed = gauges->purges_failed;
    state.sqlite_errors = store_->SqliteErrors();
    metrics_.SetStoreState(state);
    last_store_state_ = std::move(state);
  }

  const CoordinatorConfig config_;
  const Clock& clock_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  CoordinatorMetrics metrics_{*registry_};
  std::unique_ptr<CoordinatorStore> store_;
  const std::unique_ptr<kube_auth::CallerAuth> auth_;  // null: no authentication
  // Before server_: a server that was not shut down waits in its destructor for the streams,
  // which the worker finishes.
  AgentStreams streams_{*store_, clock_,
                        AgentStreamMetrics{&metrics_.agents_connected, &metrics_.usage_reports,
                                           &metrics_.report_seconds, &metrics_.purges_done,
                                           &metrics_.bytes_freed}};
  FillLeaseTable fill_leases_{clock_};
  PurgeCommands purges_{*store_, metrics_, clock_};
  RoomOnDemand room_{*store_, purges_, clock_, [this] { streams_.DispatchAll(); }};
  AgentFacingService agents_{*store_, fill_leases_, room_, clock_};
  PolicyRunner runner_{*store_, purges_, metrics_, clock_, PurgePolicyFor(config_),
                       config_.storage.check_unused_every, [this] { streams_.DispatchAll(); }};
  std::unique_ptr<claims::ClaimsController> claims_;  // null unless kubernetes.enabled
  std::optional<AdminService> admin_;                 // set by Listen, after the claims
  std::optional<CoordinatorService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::atomic<bool> shut_down_{false};
  std::atomic<bool> listening_{false};
  std::mutex store_metrics_mutex_;
  std::chrono::steady_clock::time_point store_metrics_read_;  // guarded by store_metrics_mutex_
  CoordinatorMetrics::StoreState last_store_state_;           // guarded by store_metrics_mutex_
  // Last: stopped first, while everything its handlers use still exists.
  std::unique_ptr<webhook::WebhookServer> webhook_;
  std::unique_ptr<MetricsHttpServer> http_;
  // After webhook_: stopped before the server it installs certificates into.
  std::unique_ptr<webhook::CertificateKeeper> certificates_;  // null unless certificates.managed
};

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CoordinatorServer::~CoordinatorServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const CoordinatorConfig& config, const Clock& clock) {
  ASSIGN_OR_RETURN(std::unique_ptr<kube_auth::CallerAuth> auth,
                   kube_auth::CallerAuth::Create(config, clock));
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
