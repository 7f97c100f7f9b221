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

#include "agent/caching_policy.h"
#include "agent/coordinator_client.h"
#include "agent/fill/event_loop.h"
#include "agent/fill_gate.h"
#include "agent/fill_lease_client.h"
#include "agent/local_cache_ops.h"
#include "agent/metrics.h"
#include "agent/model_cache.h"
#include "agent/service.h"
#include "agent/store/space.h"
#include "agent/store/volume_id.h"
#include "common/fs.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// How often the cache gauges are refreshed from ModelCache::List and statvfs.
constexpr std::chrono::seconds kCacheMetricsInterval{5};
// How long open Ensure streams may go on after shutdown starts before they are cancelled.
constexpr std::chrono::seconds kShutdownGrace{2};

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
  spdlog::info("removed stale socket {}", socket_path.string());
  return absl::OkStatus();
}

}  // namespace

struct AgentServer::Parts {
  AgentConfig config;
  SystemClock clock;
  EventLoop loop;
  // Before the cache, which borrows them.
  std::unique_ptr<FillLeaseClient> fill_leases;  // null without `coordinator`
  std::unique_ptr<FillGate> fill_gate;
  std::unique_ptr<ModelCache> cache;
  // Without a coordinator every model may be cached; with one, the last pushed policy decides
  // (and until the first one arrives the agent keeps caching, as it keeps serving while the
  // coordinator is away).
  CachingPolicyHolder caching_policy{/*allow_without_policy=*/true};
  std::unique_ptr<ModelCacheOps> cache_ops;
  std::unique_ptr<CoordinatorClient> coordinator;  // null without `coordinator`
  prometheus::Registry registry;
  std::unique_ptr<AgentMetrics> metrics;
  std::unique_ptr<grpc::Service> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<MetricsHttpServer> http;
  int tcp_port = 0;
  std::atomic<bool> ready{false};

  std::thread refresher;
  std::mutex refresher_mutex;
  std::condition_variable refresher_wake;
  bool stopping = false;         // guarded by refresher_mutex
  bool refresh_requested = false;  // guarded by refresher_mutex
  bool shut_down = false;

  void RefreshCacheMetrics() {
    uint64_t used = 0;
    std::vector<v1::CachedModel> models = cache->List();
    for (const v1::CachedModel& model : models) used += model.size_bytes();
    absl::StatusOr<VolumeSpace> space = ReadVolumeSpace(config.cache_root);
    if (!space.ok()) {
      spdlog::warn("cache metrics: {}", space.status());
      return;
    }
    metrics->SetCache(MakeCacheSnapshot(models.size(), used, space->capacity_bytes,
                                        space->free_bytes, config.storage.storage_size_bytes));
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

  void RequestRefresh() {
    std::lock_guard lock(refresher_mutex);
    refresh_requested = true;
    refresher_wake.notify_all();
  }
};

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Start(const AgentConfig& config) {
  auto parts = std::make_unique<Parts>();
  parts->config = config;
  parts->metrics = std::make_unique<AgentMetrics>(parts->registry);
  Parts& p = *parts;

  // Health first, so a long volume scan does not fail a liveness probe.
  if (!config.metrics_address.empty()) {
    ASSIGN_OR_RETURN(p.http, MetricsHttpServer::Start(config.metrics_address, p.registry,
                                                      [&p] { return p.ready.load(); }));
  }

  RETURN_IF_ERROR(PrepareSocketPath(config.socket));
  p.loop.Start();
  std::string volume_id;
  CoordinatorClientOptions client;
  if (!config.coordinator.empty()) {
    ASSIGN_OR_RETURN(volume_id, EnsureVolumeId(CacheLayout(config.cache_root), config.node_name));
    client.target = config.coordinator;
    client.token = config.coordinator_token;
    client.node_name = config.node_name;
    client.volume_id = volume_id;
    client.agent_version = MODELCACHE_VERSION;
    p.fill_leases = std::make_unique<FillLeaseClient>(client, std::chrono::seconds(2));
  }
  p.fill_gate = std::make_unique<FillGate>(
      p.loop, p.clock,
      FillGateOptions{.cache_root = config.cache_root,
                      .node_name = config.node_name,
                      .volume_id = volume_id,
                      .lease_ttl = config.fill_lease_ttl,
                      .poll_interval = config.fill_poll_interval,
                      .wait_timeout = config.fill_wait_timeout},
      p.fill_leases.get());
  ModelCacheOptions cache_options = config.ToModelCacheOptions();
  cache_options.fill_gate = p.fill_gate.get();
  ASSIGN_OR_RETURN(p.cache, ModelCache::Open(p.loop, p.clock, std::move(cache_options)));

  if (!config.coordinator.empty()) {
    p.cache_ops = std::make_unique<ModelCacheOps>(
        *p.cache, p.caching_policy,
        CacheOpsOptions{.cache_root = config.cache_root,
                        .caching_enabled = config.caching_enabled,
                        .on_change = [&p] { p.coordinator->ReportNow(); }});
    p.coordinator = std::make_unique<CoordinatorClient>(client, *p.cache_ops);
    p.coordinator->Start();
    spdlog::info("coordinator {}: reporting volume {} as node {}", config.coordinator, volume_id,
                 config.node_name);
  }
  AgentServiceOptions service_options{.caching_enabled = config.caching_enabled,
                                      .caching_allowed = nullptr,  // set below with a coordinator
                                      .on_model_published = [&p] {
                                        p.RequestRefresh();
                                        if (p.coordinator) p.coordinator->ReportNow();
                                      }};
  if (p.coordinator) {
    service_options.caching_allowed = [&p](std::string_view name, std::string_view version) {
      return p.caching_policy.Allowed(name, version);
    };
  }
  p.service = MakeAgentService(*p.cache, *p.metrics, std::move(service_options));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + config.socket, grpc::InsecureServerCredentials());
  if (!config.listen_tcp.empty()) {
    builder.AddListeningPort(config.listen_tcp, grpc::InsecureServerCredentials(), &p.tcp_port);
  }
  builder.RegisterService(p.service.get());
  p.server = builder.BuildAndStart();
  if (p.server == nullptr) {
    return absl::UnavailableError(fmt::format("gRPC server: cannot listen on unix:{}{}{}",
                                              config.socket, config.listen_tcp.empty() ? "" : " or ",
                                              config.listen_tcp));
  }
  if (chmod(config.socket.c_str(), 0666) != 0) {
    return ErrnoStatus(errno, "chmod 0666", config.socket);
  }

  p.RefreshCacheMetrics();
  p.refresher = std::thread([&p] { p.RefreshLoop(); });
  p.ready = true;
  spdlog::info("agent {} serving cache {} on unix:{}{}{}, metrics {}", config.node_name,
               config.cache_root.string(), config.socket,
               config.listen_tcp.empty() ? "" : " and tcp ", config.listen_tcp,
               config.metrics_address.empty() ? "off" : config.metrics_address);
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
  // First, so that no coordinator command runs against a cache that is going away.
  if (p.coordinator) p.coordinator->Stop();
  if (p.server) p.server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  {
    std::lock_guard lock(p.refresher_mutex);
    p.stopping = true;
  }
  p.refresher_wake.notify_all();
  if (p.refresher.joinable()) p.refresher.join();
  p.server.reset();
  p.service.reset();
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
  spdlog::info("agent got {}", received == SIGTERM ? "SIGTERM" : "SIGINT");
  server->Shutdown();
  return absl::OkStatus();
}

}  // namespace modelcache
