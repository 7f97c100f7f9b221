#pragma once
// The coordinator process minus main(): builds and runs its parts over one CoordinatorStore
// (the database): the gRPC server (coordinator_service.h: the agent streams, the lease
// service and the admin service), the policy runner, the metrics/health HTTP server and, when
// kubernetes.enabled, the cache claims reconciler. Startable from a test without a process.
#include <memory>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/config.h"

namespace modelcache {
namespace claims {
class ClaimsController;
}  // namespace claims

class CoordinatorServer {
 public:
  // Opens the database (migrating it), loads the tokens file, binds `config.listen` (port 0
  // picks one) and starts the policy loop. `clock` must outlive the server.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(const CoordinatorConfig& config,
                                                                  const Clock& clock);
  ~CoordinatorServer();  // Shutdown()

  int Port() const;
  // The bound port of metricsAddress (/metrics, /healthz, /readyz); 0 when it is "".
  int MetricsPort() const;
  // The bound port of webhook.listen (HTTPS /mutate); 0 when the webhook is off.
  int WebhookPort() const;
  // Stops accepting calls, ends agent streams and the policy loop; /readyz answers 503 from
  // then on. Idempotent.
  void Shutdown();
  // Runs one policy pass now (what the loop does every checkUnusedCachedModelsEvery).
  absl::Status RunPolicyOnce();
  // The cache claim reconciler (the admission webhook reports pods' namespaces to it); null
  // unless kubernetes.enabled.
  claims::ClaimsController* CacheClaims();

  class Impl;

 private:
  explicit CoordinatorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache
