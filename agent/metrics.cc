#include "agent/metrics.h"

#include <CivetServer.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

prometheus::Gauge* AddGauge(prometheus::Registry& registry, const std::string& name,
                            const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

void Respond(mg_connection* connection, int status, std::string_view content_type,
             std::string_view body) {
  mg_printf(connection,
            "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            status, status == 200 ? "OK" : "Service Unavailable",
            static_cast<int>(content_type.size()), content_type.data(), body.size());
  mg_write(connection, body.data(), body.size());
}

class MetricsHandler final : public CivetHandler {
 public:
  explicit MetricsHandler(const prometheus::Registry& registry) : registry_(registry) {}
  bool handleGet(CivetServer*, mg_connection* connection) override {
    std::string body = prometheus::TextSerializer().Serialize(registry_.Collect());
    Respond(connection, 200, "text/plain; version=0.0.4; charset=utf-8", body);
    return true;
  }

 private:
  const prometheus::Registry& registry_;
};

class ProbeHandler final : public CivetHandler {
 public:
  explicit ProbeHandler(std::function<bool()> ready) : ready_(std::move(ready)) {}
  bool handleGet(CivetServer*, mg_connection* connection) override {
    bool ok = ready_();
    Respond(connection, ok ? 200 : 503, "text/plain", ok ? "ok\n" : "not ready\n");
    return true;
  }

 private:
  std::function<bool()> ready_;
};

}  // namespace

AgentMetrics::AgentMetrics(prometheus::Registry& registry) {
  auto& ensure = prometheus::BuildCounter()
                     .Name("modelcache_ensure_requests_total")
                     .Help("Ensure requests by result: hit (already cached), miss (filled), error")
                     .Register(registry);
  ensure_hit_ = &ensure.Add({{"result", "hit"}});
  ensure_miss_ = &ensure.Add({{"result", "miss"}});
  ensure_error_ = &ensure.Add({{"result", "error"}});
  fills_in_progress_ =
      AddGauge(registry, "modelcache_fills_in_progress", "Models being filled right now");
  cache_models_ = AddGauge(registry, "modelcache_cache_models", "Published models on the volume");
  cache_used_bytes_ =
      AddGauge(registry, "modelcache_cache_used_bytes", "Bytes of published models");
  cache_capacity_bytes_ = AddGauge(registry, "modelcache_cache_capacity_bytes",
                                   "Cache capacity: the quota if set and smaller, else the disk");
  cache_free_bytes_ = AddGauge(registry, "modelcache_cache_free_bytes",
                               "Bytes a fill may still use (disk or quota, the smaller)");
}

void AgentMetrics::CountEnsure(EnsureResult result) {
  switch (result) {
    case EnsureResult::kHit: ensure_hit_->Increment(); break;
    case EnsureResult::kMiss: ensure_miss_->Increment(); break;
    case EnsureResult::kError: ensure_error_->Increment(); break;
  }
}

void AgentMetrics::SetFillsInProgress(uint64_t fills) {
  fills_in_progress_->Set(static_cast<double>(fills));
}

void AgentMetrics::SetCache(const CacheSnapshot& snapshot) {
  cache_models_->Set(static_cast<double>(snapshot.models));
  cache_used_bytes_->Set(static_cast<double>(snapshot.used_bytes));
  cache_capacity_bytes_->Set(static_cast<double>(snapshot.capacity_bytes));
  cache_free_bytes_->Set(static_cast<double>(snapshot.free_bytes));
}

AgentMetrics::CacheSnapshot MakeCacheSnapshot(uint64_t models, uint64_t used_bytes,
                                              uint64_t disk_capacity_bytes,
                                              uint64_t disk_free_bytes, uint64_t quota_bytes) {
  AgentMetrics::CacheSnapshot snapshot;
  snapshot.models = models;
  snapshot.used_bytes = used_bytes;
  snapshot.capacity_bytes = disk_capacity_bytes;
  snapshot.free_bytes = disk_free_bytes;
  if (quota_bytes != 0) {
    snapshot.capacity_bytes = std::min(disk_capacity_bytes, quota_bytes);
    uint64_t quota_left = quota_bytes > used_bytes ? quota_bytes - used_bytes : 0;
    snapshot.free_bytes = std::min(disk_free_bytes, quota_left);
  }
  return snapshot;
}

struct MetricsHttpServer::State {
  MetricsHandler metrics;
  ProbeHandler healthz;
  ProbeHandler readyz;
  std::unique_ptr<CivetServer> server;
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, const prometheus::Registry& registry,
    std::function<bool()> ready) {
  auto state = std::unique_ptr<State>(
      new State{MetricsHandler(registry), ProbeHandler([] { return true; }),
                ProbeHandler(std::move(ready)), nullptr});
  std::vector<std::string> options = {"listening_ports", address, "num_threads", "2"};
  // CivetServer reports a failed bind by throwing; keep the exception at this edge.
  try {
    state->server = std::make_unique<CivetServer>(options);
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        fmt::format("metrics server on {}: {}", address, error.what()));
  }
  state->server->addHandler("/metrics", state->metrics);
  state->server->addHandler("/healthz", state->healthz);
  state->server->addHandler("/readyz", state->readyz);
  std::vector<int> ports = state->server->getListeningPorts();
  int port = ports.empty() ? 0 : ports.front();
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(std::move(state), port));
}

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<State> state, int port)
    : state_(std::move(state)), port_(port) {}

MetricsHttpServer::~MetricsHttpServer() {
  if (state_ && state_->server) state_->server->close();
}

}  // namespace modelcache
