#pragma once
// The small HTTP server of each daemon's metrics port:
//   /metrics  the registry in Prometheus text format
//   /healthz  200 while the process serves HTTP (liveness)
//   /readyz   200 when `ready()` says so, else 503 (readiness)
//
// prometheus-cpp 1.0's Exposer has no way to add other handlers (its CivetServer is private
// and civetweb's callbacks carry no user data), so this runs its own civetweb server (the
// library prometheus-cpp itself uses).
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace modelcache {

struct MetricsHttpOptions {
  std::string address;  // "host:port"; port 0 picks a free one
  // /readyz answers 200 while this returns true. Called on civetweb's threads; empty: ready.
  std::function<bool()> ready;
  // Called before each /metrics scrape (on civetweb's threads, possibly concurrently) to
  // refresh gauges that are cheaper to read on demand than to keep current. May be empty.
  std::function<void()> before_scrape;
};

class MetricsHttpServer {
 public:
  // `registry` and everything the callbacks use must outlive the server. UNAVAILABLE when the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      MetricsHttpOptions options, const prometheus::Registry& registry);
  // The form the agent used first: no before_scrape.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, const prometheus::Registry& registry,
      std::function<bool()> ready);
  ~MetricsHttpServer();  // stops serving; returns once no handler runs

  int Port() const { return port_; }

 private:
  struct State;
  MetricsHttpServer(std::unique_ptr<State> state, int port);
  std::unique_ptr<State> state_;
  int port_;
};

}  // namespace modelcache
