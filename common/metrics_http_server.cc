#include "common/metrics_http_server.h"

#include <CivetServer.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <string_view>
#include <vector>

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

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
  MetricsHandler(const prometheus::Registry& registry, std::function<void()> before_scrape)
      : registry_(registry), before_scrape_(std::move(before_scrape)) {}
  bool handleGet(CivetServer*, mg_connection* connection) override {
    if (before_scrape_) before_scrape_();
    std::string body = prometheus::TextSerializer().Serialize(registry_.Collect());
    Respond(connection, 200, "text/plain; version=0.0.4; charset=utf-8", body);
    return true;
  }

 private:
  const prometheus::Registry& registry_;
  std::function<void()> before_scrape_;
};

class ProbeHandler final : public CivetHandler {
 public:
  explicit ProbeHandler(std::function<bool()> ready) : ready_(std::move(ready)) {}
  bool handleGet(CivetServer*, mg_connection* connection) override {
    bool ok = !ready_ || ready_();
    Respond(connection, ok ? 200 : 503, "text/plain", ok ? "ok\n" : "not ready\n");
    return true;
  }

 private:
  std::function<bool()> ready_;
};

}  // namespace

struct MetricsHttpServer::State {
  MetricsHandler metrics;
  ProbeHandler healthz;
  ProbeHandler readyz;
  std::unique_ptr<CivetServer> server;
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    MetricsHttpOptions options, const prometheus::Registry& registry) {
  auto state = std::unique_ptr<State>(
      new State{MetricsHandler(registry, std::move(options.before_scrape)), ProbeHandler(nullptr),
                ProbeHandler(std::move(options.ready)), nullptr});
  std::vector<std::string> civet_options = {"listening_ports", options.address, "num_threads", "2"};
  // CivetServer reports a failed bind by throwing; keep the exception at this edge.
  try {
    state->server = std::make_unique<CivetServer>(civet_options);
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        fmt::format("metrics server on {}: {}", options.address, error.what()));
  }
  state->server->addHandler("/metrics", state->metrics);
  state->server->addHandler("/healthz", state->healthz);
  state->server->addHandler("/readyz", state->readyz);
  std::vector<int> ports = state->server->getListeningPorts();
  int port = ports.empty() ? 0 : ports.front();
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(std::move(state), port));
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, const prometheus::Registry& registry, std::function<bool()> ready) {
  return Start(MetricsHttpOptions{.address = address, .ready = std::move(ready)}, registry);
}

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<State> state, int port)
    : state_(std::move(state)), port_(port) {}

MetricsHttpServer::~MetricsHttpServer() {
  // close() joins civetweb's worker threads, so no handler outlives the callbacks it calls.
  if (state_ && state_->server) state_->server->close();
}

}  // namespace modelcache
