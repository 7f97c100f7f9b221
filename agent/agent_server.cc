#include "agent/agent_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "agent/coordination/caching_policy.h"
#include "agent/coordination/command_answers.h"
#include "agent/coordination/coordinator_client.h"
#include "agent/coordination/model_cache_ops.h"
#include "agent/coordination/room_requests.h"
#include "agent/coordination/saved_policy.h"
#include "agent/coordination/volume_client.h"
#include "agent/grpc/agent_service.h"
#include "agent/loop/event_loop.h"
#include "agent/maintenance/maintenance.h"
#include "agent/maintenance/maintenance_service.h"
#include "agent/metrics.h"
#include "agent/model_cache.h"
#include "agent/pod_leases/pod_lease_follower.h"
#include "agent/pod_leases/pod_lease_table.h"
#include "agent/single_flight/fill_gate.h"
#include "agent/single_flight/fill_lease_client.h"
#include "agent/store/space.h"
#include "agent/store/storage_check.h"
#include "agent/store/volume_id.h"
#include "common/duration.h"
#include "common/fs.h"
#include "common/log_fields.h"
#include "common/status_annotate.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// How often the cache gauges are refreshed from ModelCache::List and statvfs.
constexpr std::chrono::seconds kCacheMetricsInterval{5};
// How long open Ensure streams may go on after shutdown starts before they are cancelled.
constexpr std::chrono::seconds kShutdownGrace{2};
// Command answers kept in the state folder; the coordinator re-sends only recent commands.
constexpr size_t kRememberedAnswers = 4096;
// Room on demand: the coordinator's plan plus the purges by an agent of the volume.
constexpr std::chrono::seconds kRoomOnDemandTimeout{60};
// `cleanup` asks the coordinator for the volume's leases; it refuses when no answer comes.
constexpr std::chrono::seconds kVolumeLeasesTimeout{5};
constexpr char kCommandAnswersFileName[] = "command-answers.bin";

// Makes `socket_path` free to bind: creates its folder, removes a stale socket file. Refuses
// to take over a socket another process still answers on, or a file that is not a socket.
absl::Status PrepareSocketPath(const std::filesystem::path& socket_path) {
  RETURN_IF_ERROR(CreateDirectories(socket_path.parent_path()));
  struct stat info;
  if (lstat(socket_path.c_str(), &info) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "stat", socket_path);
  }
  if (!S_ISSOCK(info.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("socket {}: exists and is not a socket", socket_path.string()));
  }
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return ErrnoStatus(errno, "socket for", socket_path);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  bool alive = connect(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(probe);
  if (alive) {
    return absl::FailedPreconditionError(fmt::format(
        "socket {}: another agent is listening on it", socket_path.string()));
  }
  if (unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "remove stale socket", socket_path);
  }
  spdlog::info("removed a stale socket {}", LogFields().Add("path", socket_path.string()));
  return absl::OkStatus();
}

// The folder and its type, for the storage check's log line.
LogFields StorageFields(const std::filesystem::path& root, const StorageCheckResult& check) {
  LogFields fields;
  fields.Add("path", root.string())
      .Add("type", check.type_name)
      .Add("magic", fmt::format("{:#010x}", check.type_magic));
  if (check.type_overridden) fields.Add("type_overridden_for_tests", "true");
  return fields;
}

// statfs's verdict on the cache folder, logged once here. `refused` gets the reason Ensure
// answers with when the type is not supported (and not bypassed); the root folder itself is
// created first so that a fresh hostPath can be judged.
absl::Status CheckCacheStorage(const AgentConfig& config, std::string& refused) {
  RETURN_IF_ERROR(CreateDirectories(config.cache_root));
  std::optional<std::string> pretend;
  if (!config.test_only_filesystem_type.empty()) pretend = config.test_only_filesystem_type;
  StorageCheckResult check =
      CheckStorage(config.cache_root, config.storage.bypass_storage_check, pretend);
  LogFields fields = StorageFields(config.cache_root, check);
  if (!check.accepted) {
    spdlog::error("storage check refused the cache {}",
                  fields.Add("error", check.problem).Add("next", check.next));
    refused = fmt::format("cache refused: {} at {} (storage check; see the agent's log)",
                          check.type_name, config.cache_root.string());
  } else if (!check.problem.empty()) {
    spdlog::warn("storage check: unsupported filesystem {}",
                 fields.Add("error", check.problem).Add("next", check.next));
  } else {
    spdlog::info("storage check accepted the cache {}", fields);
  }
  return absl::OkStatus();
}

absl::StatusOr<MaintenanceOptions> MaintenanceOptionsFor(const AgentConfig& config,
                                                         const std::string& volume_id) {
  MaintenanceOptions options;
  options.serving = {volume_id, config.cache_root};
  options.sources = config.ToModelCacheOptions().sources;
  for (const std::filesystem::path& root : config.extra_volumes) {
    // A fresh volume (the target of a migration) gets its id here, like the cache itself.
    absl::StatusOr<std::string> id = EnsureVolumeId(CacheLayout(root), config.node_name);
    if (!id.ok()) {
      return Annotate(id.status(), fmt::format("extraVolumes: {}", root.string()));
    }
    if (*id == volume_id) {
      return absl::InvalidArgumentError(fmt::format(
          "extraVolumes: {} is the cache volume itself (same volume id {})", root.string(), *id));
    }
    options.extra.push_back({*id, root});
    spdlog::info("extra volume {}", LogFields().Add("volume_id", *id).Add("path", root.string()));
  }
  return options;
}

// The coordinator's address, credentials and this agent's identity, for the stream client
// and the fill-lease client alike.
CoordinatorClientOptions CoordinatorClientOptionsFor(const AgentConfig& config,
                                                     const std::string& volume_id) {
  CoordinatorClientOptions client;
  client.target = config.coordinator;
  client.token = config.coordinator_token;
  if (!config.coordinator_token_file.empty()) {
    client.token_file = std::make_shared<kube::TokenSource>(
        kube::TokenSource::FromFile(config.coordinator_token_file));
  }
  client.node_name = config.node_name;
  client.volume_id = volume_id;
  client.agent_version = MODELCACHE_VERSION;
  client.tls = config.coordinator_tls.enabled;
  client.root_certs = config.coordinator_tls.ca_pem;
  client.client_cert = config.coordinator_tls.cert_pem;
  client.client_key = config.coordinator_tls.key_pem;
  client.report_interval = config.coordinator_report_interval;
  return client;
}

FillGateOptions FillGateOptionsFor(const AgentConfig& config, const std::string& volume_id) {
  return FillGateOptions{.cache_root = config.cache_root,
                         .node_name = config.node_name,
                         .volume_id = volume_id,
                         .lease_ttl = config.fill_lease_ttl,
                         .poll_interval = config.fill_poll_interval,
                         .wait_timeout = config.fill_wait_timeout,
                         // A fill that lands no chunk for this long stops renewing its lease,
                         // so another agent can take it over.
                         .progress_window = config.fill_progress_window};
}

// The policy the previous run saved, applied until the coordinator sends one; a file that
// cannot be read is logged and ignored. Without either, every model is refused (caching is
// opt-in) until the coordinator's policy arrives, which is said once here.
void ApplySavedPolicy(const std::filesystem::path& policy_file, CachingPolicyHolder& policy) {
  absl::StatusOr<std::optional<v1::CachingPolicy>> saved = LoadSavedPolicy(policy_file);
  if (!saved.ok()) {
    spdlog::warn("saved caching policy not read {}",
                 LogFields()
                     .Add("path", policy_file.string())
                     .Add("error", saved.status())
                     .Add("next", "ignored: refusing every model until the coordinator answers"));
  } else if (saved->has_value()) {
    policy.Set(**saved);
    spdlog::info("caching policy from the last run (until the coordinator answers): default "
                 "{}, {} rules, {} sources",
                 (*saved)->default_enabled() ? "enabled" : "disabled", (*saved)->rules_size(),
                 (*saved)->sources_size());
  }
  if (!policy.Known()) {
    // Every Ensure until then answers FAILED_PRECONDITION ("no caching policy").
    spdlog::warn("no caching policy yet {}",
                 LogFields()
                     .Add("path", policy_file.string())
                     .Add("error", "no policy saved by an earlier run and none received yet")
                     .Add("next", "refusing every model (clients fall back) until the "
                                  "coordinator sends its policy"));
  }
}

}  // namespace

struct AgentServer::Parts {
  AgentConfig config;
  SystemClock clock;
  // Pods' leases (Ensure with a holder, Hold); LiveCount() feeds the live leases gauge.
  std::unique_ptr<PodLeaseTable> pod_leases;
  // Answers to coordinator commands, in the state folder (null without a coordinator).
  std::unique_ptr<CommandAnswers> answers;
  EventLoop loop;
  // Before the cache, which borrows them.
  std::unique_ptr<FillLeaseClient> fill_leases;  // null without `coordinator`
  // Room on demand and the volume's leases on every node; null without `coordinator`.
  std::unique_ptr<VolumeClient> volume_client;
  std::unique_ptr<RoomRequests> room_requests;
  std::unique_ptr<FillGate> fill_gate;
  std::unique_ptr<ListingBudget> listing_budget;  // borrowed by the cache's sources
  std::unique_ptr<ModelCache> cache;  // null when the storage check refused the cache
  std::string refused;                // "cache refused: tmpfs at /cache (...)", else ""
  std::unique_ptr<Maintenance> maintenance;
  std::unique_ptr<grpc::Service> maintenance_service;
  // Without a coordinator every model may be cached; with one, the last pushed policy decides.
  // Until the first one arrives, the policy saved by the previous run applies
  // (agent/coordination/saved_policy.h); on a first start the agent caches nothing (caching is
  // opt-in: each model must be enabled) and Ensure answers FAILED_PRECONDITION, so clients
  // fall back.
  CachingPolicyHolder caching_policy{/*allow_without_policy=*/false};
  std::unique_ptr<ModelCacheOps> cache_ops;
  std::unique_ptr<CoordinatorClient> coordinator;  // null without `coordinator`
  // Leases that follow this node's pods (kubernetes.podLeases); null when off.
  std::unique_ptr<pod_leases::PodLeaseFollower> pod_follower;
  prometheus::Registry registry;
  std::unique_ptr<AgentMetrics> metrics;
  std::unique_ptr<grpc::Service> service;
  std::unique_ptr<grpc::Server> server;
  // Before `http`, whose handlers use them: members are destroyed in reverse order.
  std::mutex scraped_mutex;
  CoordinatorClient* scraped_coordinator = nullptr;  // guarded by scraped_mutex
  std::atomic<bool> ready{false};
  std::unique_ptr<MetricsHttpServer> http;
  int tcp_port = 0;

  std::thread scrubber;  // runs only with scrub_every > 0
  std::atomic<bool> scrub_cancel{false};

  std::thread refresher;
  std::mutex refresher_mutex;
  std::condition_variable refresher_wake;
  bool stopping = false;         // guarded by refresher_mutex
  bool refresh_requested = false;  // guarded by refresher_mutex
  bool shut_down = false;

  void RefreshCacheMetrics() {
    metrics->SetLiveLeases(pod_leases ? pod_leases->LiveCount() : 0);
    if (!cache) return;
    uint64_t used = 0;
    std::vector<v1::CachedModel> models = cache->List();
    for (const v1::CachedModel& model : models) used += model.size_bytes();
    absl::StatusOr<VolumeSpace> space = ReadVolumeSpace(config.cache_root);
    if (!space.ok()) {
      spdlog::warn("cache metrics refresh failed {}",
                   LogFields()
                       .Add("path", config.cache_root.string())
                       .Add("error", space.status())
                       .Add("next", "the cache gauges keep their last values; retried in 5 s"));
      return;
    }
    metrics->SetCache(MakeCacheSnapshot(models.size(), used, space->capacity_bytes,
                                        space->free_bytes, config.storage.storage_size_bytes));
  }

  // On the metrics server's threads, before each scrape. The HTTP server outlives the
  // coordinator client, hence the guarded pointer.
  void RefreshCoordinatorMetrics() {
    std::lock_guard lock(scraped_mutex);
    if (scraped_coordinator != nullptr) {
      metrics->SetCoordinator(scraped_coordinator->Connected(),
                              scraped_coordinator->LastReportUnixSeconds());
    }
  }
  void SetScrapedCoordinator(CoordinatorClient* client) {
    std::lock_guard lock(scraped_mutex);
    scraped_coordinator = client;
  }

  void RefreshLoop() {
    std::unique_lock lock(refresher_mutex);
    while (!stopping) {
      lock.unlock();
      RefreshCacheMetrics();
      lock.lock();
      refresher_wake.wait_for(lock, kCacheMetricsInterval,
                              [this] { return stopping || refresh_requested; });
      refresh_requested = false;
    }
  }

  // Waits scrub_every, then one rate-limited pass, until stopping (same mutex and wake-up as
  // the refresher; scrub_cancel interrupts a pass in the middle of a file).
  void ScrubLoop() {
    RateLimit rate{config.scrub_bytes_per_second};
    std::unique_lock lock(refresher_mutex);
    while (!stopping) {
      refresher_wake.wait_for(lock, config.scrub_every, [this] { return stopping; });
      if (stopping) break;
      lock.unlock();
      absl::StatusOr<int> quarantined = maintenance->Scrub(rate, &scrub_cancel);
      if (!quarantined.ok() && !absl::IsCancelled(quarantined.status())) {
        spdlog::warn("scrub pass failed {}",
                     LogFields()
                         .Add("volume", config.cache_root.string())
                         .Add("error", quarantined.status())
                         .Add("next", fmt::format("the next pass starts in {}",
                                                  FormatDuration(config.scrub_every))));
      } else if (quarantined.ok()) {
        spdlog::info("scrub pass done {}", LogFields()
                                               .Add("volume", config.cache_root.string())
                                               .Add("quarantined", *quarantined));
      }
      lock.lock();
    }
  }

  void RequestRefresh() {
    std::lock_guard lock(refresher_mutex);
    refresh_requested = true;
    refresher_wake.notify_all();
  }
  void ReportNow() {
    if (coordinator) coordinator->ReportNow();
  }

  // The builders Start calls in order; each makes one part.

  // /metrics, /healthz and /readyz: first, so that a long volume scan fails no liveness probe.
  absl::Status StartHealth() {
    if (config.metrics_address.empty()) return absl::OkStatus();
    MetricsHttpOptions options{.address = config.metrics_address,
                               .ready = [this] { return ready.load(); },
                               .before_scrape = [this] { RefreshCoordinatorMetrics(); }};
    ASSIGN_OR_RETURN(http, MetricsHttpServer::Start(std::move(options), registry));
    return absl::OkStatus();
  }

  // The fill gate (and its fill-lease client with a coordinator), then the cache on the volume.
  absl::Status OpenCache(const std::string& volume_id) {
    if (!config.coordinator.empty()) {
      const CoordinatorClientOptions client = CoordinatorClientOptionsFor(config, volume_id);
      fill_leases = std::make_unique<FillLeaseClient>(client, std::chrono::seconds(2));
      volume_client = std::make_unique<VolumeClient>(client);
      room_requests =
          std::make_unique<RoomRequests>(*volume_client, volume_id, kRoomOnDemandTimeout);
    }
    fill_gate = std::make_unique<FillGate>(loop, clock, FillGateOptionsFor(config, volume_id),
                                           fill_leases.get());
    ModelCacheOptions options = config.ToModelCacheOptions();
    options.fill_gate = fill_gate.get();
    listing_budget = std::make_unique<ListingBudget>(config.listing);
    options.sources.listing_budget = listing_budget.get();
    options.on_fill_finished = [metrics = metrics.get()](const FillStats& fill) {
      metrics->CountFill(fill.scheme, fill.status.ok(), fill.bytes_fetched,
                         fill.duration.count(), fill.chunk_retries);
      metrics->CountIgnoredRanges(fill.scheme, fill.ranges_ignored, fill.whole_file_streams);
    };
    if (room_requests) {
      // A fill that does not fit asks the coordinator for room; without one it fails as it is.
      options.make_room = [rooms = room_requests.get()](
                              const std::string& name, const std::string& version,
                              uint64_t bytes_short, std::function<void(absl::Status)> done) {
        rooms->Ask(name, version, bytes_short, std::move(done));
      };
    }
    ASSIGN_OR_RETURN(cache, ModelCache::Open(loop, clock, std::move(options)));
    return absl::OkStatus();
  }

  // Cleanup, verify, repair and migrate over the cache and extraVolumes; returns those.
  absl::StatusOr<std::vector<MaintainedVolume>> StartMaintenance(const std::string& volume_id) {
    ASSIGN_OR_RETURN(MaintenanceOptions options, MaintenanceOptionsFor(config, volume_id));
    // Cleanup never removes a model a pod on this node holds (unless forced).
    options.is_leased = [leases = pod_leases.get()](std::string_view name,
                                                    std::string_view version) {
      return leases->is_leased(name, version);
    };
    if (volume_client) {
      // ... nor one a pod on another node of the volume holds: the coordinator knows those.
      options.volume_leases = [client = volume_client.get()](std::string_view volume) {
        return client->LeasedModels(std::string(volume), kVolumeLeasesTimeout);
      };
    }
    // A cleanup of the old volume shows in `usage` at once, not at the next heartbeat.
    options.on_volume_changed = [this] { ReportNow(); };
    std::vector<MaintainedVolume> extra_volumes = options.extra;
    maintenance = std::make_unique<Maintenance>(*cache, clock, std::move(options));
    maintenance_service = MakeMaintenanceService(*maintenance);
    return extra_volumes;
  }

  // The coordinator stream, when one is configured: the saved policy until it answers, the
  // durable command answers, and the cache operations it reports and commands.
  absl::Status StartCoordinatorClient(const std::string& volume_id,
                                      std::vector<MaintainedVolume> extra_volumes) {
    if (config.coordinator.empty()) return absl::OkStatus();
    const std::filesystem::path policy_file = config.state_dir / kSavedPolicyFileName;
    ApplySavedPolicy(policy_file, caching_policy);
    ASSIGN_OR_RETURN(answers, CommandAnswers::Open(config.state_dir / kCommandAnswersFileName,
                                                   kRememberedAnswers));
    cache_ops = std::make_unique<ModelCacheOps>(
        *cache, caching_policy,
        CacheOpsOptions{.cache_root = config.cache_root,
                        .caching_enabled = config.caching_enabled,
                        .on_change = [this] { ReportNow(); },
                        .pod_leases = pod_leases.get(),
                        .policy_file = policy_file,
                        .extra_volumes = std::move(extra_volumes)});
    CoordinatorClientOptions options = CoordinatorClientOptionsFor(config, volume_id);
    options.answers = answers.get();
    options.on_purged = [metrics = metrics.get()](std::string_view reason, uint64_t bytes_freed) {
      metrics->CountPurge(reason, bytes_freed);
    };
    coordinator = std::make_unique<CoordinatorClient>(options, *cache_ops);
    coordinator->Start();
    SetScrapedCoordinator(coordinator.get());
    spdlog::info("reporting to the coordinator {}", LogFields()
                                                        .Add("coordinator", config.coordinator)
                                                        .Add("volume_id", volume_id)
                                                        .Add("node", config.node_name));
    return absl::OkStatus();
  }

  // Leases that follow the pods of this node through the Kubernetes API, when enabled.
  absl::Status StartPodFollower() {
    if (!config.kubernetes.enabled) return absl::OkStatus();
    ASSIGN_OR_RETURN(pod_follower,
                     pod_leases::PodLeaseFollower::Create(
                         config.kubernetes,
                         {.node_name = config.node_name, .on_leases_changed = [this] { ReportNow(); }},
                         *pod_leases, clock));
    pod_follower->Start();
    return absl::OkStatus();
  }

  // modelcache.v1.Agent over the cache; with a coordinator its policy and registry decide.
  std::unique_ptr<grpc::Service> MakeService() {
    AgentServiceOptions options{.caching_enabled = config.caching_enabled,
                                .caching_allowed = nullptr,
                                .on_model_published = [this] {
                                  RequestRefresh();
                                  ReportNow();
                                },
                                .pod_leases = pod_leases.get(),
                                .on_leases_changed = [this] { ReportNow(); }};
    if (coordinator) {
      options.caching_allowed = [this](std::string_view name, std::string_view version) {
        return caching_policy.Check(name, version);
      };
      options.policy_known = [this] { return caching_policy.Known(); };
      options.registry_lookup = [this](std::string_view name, std::string_view version) {
        return caching_policy.LookupSource(name, version);
      };
    }
    return MakeAgentService(*cache, *metrics, std::move(options));
  }

  // The gRPC server for `service` and `maintenance_service`, on the socket (0666, so that
  // pods of any uid connect) and on listenTcp when set.
  absl::Status StartGrpcServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + config.socket, grpc::InsecureServerCredentials());
    if (!config.listen_tcp.empty()) {
      builder.AddListeningPort(config.listen_tcp, grpc::InsecureServerCredentials(), &tcp_port);
    }
    builder.RegisterService(service.get());
    builder.RegisterService(maintenance_service.get());
    server = builder.BuildAndStart();
    if (server == nullptr) {
      return absl::UnavailableError(fmt::format("gRPC server: cannot listen on unix:{}{}{}",
                                                config.socket,
                                                config.listen_tcp.empty() ? "" : " or ",
                                                config.listen_tcp));
    }
    if (chmod(config.socket.c_str(), 0666) != 0) {
      return ErrnoStatus(errno, "chmod 0666", config.socket);
    }
    return absl::OkStatus();
  }

  // The cache gauges' refresher and, when configured, the scrubber.
  void StartBackgroundThreads() {
    RefreshCacheMetrics();
    refresher = std::thread([this] { RefreshLoop(); });
    if (config.scrub_every.count() > 0) scrubber = std::thread([this] { ScrubLoop(); });
  }

  void LogServing() const {
    LogFields serving;
    serving.Add("node", config.node_name)
        .Add("volume", config.cache_root.string())
        .Add("socket", "unix:" + config.socket);
    if (!config.listen_tcp.empty()) serving.Add("tcp", config.listen_tcp);
    serving.Add("metrics", config.metrics_address.empty() ? "off" : config.metrics_address);
    spdlog::info("agent serving {}", serving);
  }
};

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Start(const AgentConfig& config) {
  auto parts = std::make_unique<Parts>();
  Parts& p = *parts;
  p.config = config;
  p.metrics = std::make_unique<AgentMetrics>(p.registry);
  p.pod_leases = std::make_unique<PodLeaseTable>(p.clock, config.lease_ttl);
  RETURN_IF_ERROR(p.StartHealth());
  RETURN_IF_ERROR(PrepareSocketPath(config.socket));
  p.loop.Start();
  RETURN_IF_ERROR(CheckCacheStorage(config, p.refused));
  if (!p.refused.empty()) return StartRefusing(std::move(parts));

  ASSIGN_OR_RETURN(std::string volume_id,
                   EnsureVolumeId(CacheLayout(config.cache_root), config.node_name));
  RETURN_IF_ERROR(p.OpenCache(volume_id));
  ASSIGN_OR_RETURN(std::vector<MaintainedVolume> extra_volumes, p.StartMaintenance(volume_id));
  RETURN_IF_ERROR(p.StartCoordinatorClient(volume_id, std::move(extra_volumes)));
  RETURN_IF_ERROR(p.StartPodFollower());
  p.service = p.MakeService();
  RETURN_IF_ERROR(p.StartGrpcServer());
  p.StartBackgroundThreads();
  p.ready = true;
  p.LogServing();
  return std::unique_ptr<AgentServer>(new AgentServer(std::move(parts)));
}

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::StartRefusing(
    std::unique_ptr<Parts> parts) {
  Parts& p = *parts;
  p.service = MakeRefusingAgentService(*p.metrics, p.refused);
  p.maintenance_service = MakeRefusingMaintenanceService(p.refused);
  RETURN_IF_ERROR(p.StartGrpcServer());
  // Ready on purpose: pods must reach the agent to learn that it refuses, and fall back.
  p.ready = true;
  spdlog::warn("agent serving with caching refused {}",
               LogFields()
                   .Add("node", p.config.node_name)
                   .Add("socket", "unix:" + p.config.socket)
                   .Add("error", p.refused)
                   .Add("next", "every Ensure and maintenance call answers FAILED_PRECONDITION"));
  return std::unique_ptr<AgentServer>(new AgentServer(std::move(parts)));
}

AgentServer::AgentServer(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

AgentServer::~AgentServer() { Shutdown(); }

void AgentServer::Shutdown() {
  Parts& p = *parts_;
  if (p.shut_down) return;
  p.shut_down = true;
  p.ready = false;
  spdlog::info("agent shutting down");
  p.SetScrapedCoordinator(nullptr);
  // Its callback reports through the coordinator client.
  if (p.pod_follower) p.pod_follower->Stop();
  // First, so that no coordinator command runs against a cache that is going away, and no
  // fill waits for room that will not come.
  if (p.volume_client) p.volume_client->CancelAll();
  if (p.room_requests) p.room_requests->Stop();
  if (p.coordinator) p.coordinator->Stop();
  if (p.server) p.server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  {
    std::lock_guard lock(p.refresher_mutex);
    p.stopping = true;
  }
  p.scrub_cancel = true;
  p.refresher_wake.notify_all();
  if (p.refresher.joinable()) p.refresher.join();
  if (p.scrubber.joinable()) p.scrubber.join();
  p.server.reset();
  p.service.reset();
  p.maintenance_service.reset();
  p.maintenance.reset();
  // Fills in progress stop here; their staging journals let the next start resume them.
  p.cache.reset();
  // Sessions still at the gate release their leases and end.
  p.fill_gate.reset();
  // Only now: a prefetched fill ending above may still have asked the client to report.
  p.coordinator.reset();
  p.cache_ops.reset();
  p.loop.Stop();
  unlink(p.config.socket.c_str());
  p.http.reset();
}

int AgentServer::TcpPort() const { return parts_->tcp_port; }
int AgentServer::MetricsPort() const { return parts_->http ? parts_->http->Port() : 0; }
bool AgentServer::Ready() const { return parts_->ready; }

absl::Status RunAgentUntilSignal(const AgentConfig& config) {
  // Blocked here, before any thread exists, so that every thread inherits the mask and
  // sigwait below is the only place these signals are taken.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ASSIGN_OR_RETURN(std::unique_ptr<AgentServer> server, AgentServer::Start(config));
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("agent got a stop signal {}",
               LogFields().Add("signal", received == SIGTERM ? "SIGTERM" : "SIGINT"));
  server->Shutdown();
  return absl::OkStatus();
}

}  // namespace modelcache
