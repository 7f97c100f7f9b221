#pragma once
// The reconciler that keeps the cache claim copies (claims_plan.h says what it decides): three
// informers (namespaces, persistentvolumes, persistentvolumeclaims; kube/informer.h) keep a
// cache of the cluster, and one thread of its own runs a pass whenever they report a change,
// a pod asked in a namespace, an asked namespace's idle time ran out, a failed request's retry
// is due, or kubernetes.resyncEvery passed. A pass plans from the caches (only once all three
// listed completely, so a partial view never deletes anything) and carries out the actions
// with resourceVersion and uid preconditions; a conflict just means "look again".
//
// Threads: nothing here blocks a caller. Start() returns at once (an unreachable API server
// costs the informers one attempt per backoff); NamespaceAsked() and View() take a mutex for a
// copy; every API request runs on the informers' threads or the reconciler's.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/storage_config.h"
#include "coordinator/claims/claims_config.h"
#include "coordinator/claims/claims_plan.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace modelcache::v1 {
class NamespacesResponse;
}  // namespace modelcache::v1

namespace modelcache::claims {

// What `modelcachectl namespaces` shows.
struct ClaimsView {
  SourceStatus source;
  std::vector<NamespaceStatus> namespaces;
  std::string api_problem;     // the last list/watch failure, "" once the caches synced again
  int64_t last_pass_unix_ms = 0;  // 0: no pass yet
  int64_t passes = 0;
};

class ClaimsController {
 public:
  // Loads the API server's configuration (kubernetes.kubeconfig, else in-cluster, $KUBECONFIG,
  // ~/.kube/config) and opens kubernetes.requestLog; does not contact the API server. Errors
  // name the file or key. `clock` (for asks and idle times) and `registry` outlive it.
  static absl::StatusOr<std::unique_ptr<ClaimsController>> Create(const KubernetesConfig& config,
                                                                  const StorageConfig& storage, const Clock& clock,
                                                                  prometheus::Registry& registry);
  ~ClaimsController();  // Stop()

  void Start();  // informers and the reconciler thread; once
  void Stop();   // idempotent; ends requests in flight and joins

  // The entry point for pods that ask for a cached model (the admission webhook): the namespace
  // gets a copy, kept until kubernetes.namespaceIdleAfter after the latest ask. INVALID_ARGUMENT
  // naming the value for a name that cannot be a namespace (over 63 characters, not a DNS label).
  absl::Status NamespaceAsked(std::string_view namespace_name, Clock::TimePoint at);

  // A pass soon (tests; after the fake clock moved).
  void Trigger();
  ClaimsView View() const;

  struct Impl;

 private:
  explicit ClaimsController(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The view as the Namespaces RPC answers it.
void FillNamespacesResponse(const ClaimsView& view, v1::NamespacesResponse* response);

}  // namespace modelcache::claims
