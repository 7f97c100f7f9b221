#pragma once
// Leases that follow the pods: the agent watches the pods scheduled to its node that carry the
// modelcache.io/inject label (kube/informer.h, fieldSelector spec.nodeName=<node>) and holds one
// lease per (pod uid, model, version) in the agent's PodLeaseTable for as long as the pod exists
// and has not ended (pod_lease_wants.h decides). The lease has no expiry: it ends when the pod
// is deleted, ends, or is found gone at a relist. Leases reach the coordinator with the usage
// reports as every lease does, so its purge plan skips a model a pod uses, with no sidecar.
//
// When the API server is unreachable the informer keeps its last view and so the leases stay
// (a lease the agent cannot confirm is kept, never dropped); when it answers again the relist
// reports the pods that went meanwhile and their leases end.
//
// Threads: the informer's thread makes every API request and runs the handler; nothing here
// blocks a caller. Start() returns at once.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/pod_leases/pod_lease_table.h"
#include "agent/pod_leases/pod_leases_config.h"
#include "common/clock.h"
#include "kube/watch_policy.h"

namespace modelcache::pod_leases {

struct PodLeaseFollowerOptions {
  std::string node_name;  // required: the pods watched are those with spec.nodeName = this
  // Called (on the informer's thread) after a lease was taken or ended: report now.
  std::function<void()> on_leases_changed;
  kube::BackoffPolicy backoff;
};

class PodLeaseFollower {
 public:
  // Loads the API server's configuration (config.kubeconfig, else in-cluster, $KUBECONFIG,
  // ~/.kube/config) and opens config.requestLog; does not contact the API server. Errors name
  // the file or key. `leases` and `clock` must outlive the follower.
  static absl::StatusOr<std::unique_ptr<PodLeaseFollower>> Create(const PodLeasesConfig& config,
                                                                  PodLeaseFollowerOptions options,
                                                                  PodLeaseTable& leases, const Clock& clock);
  ~PodLeaseFollower();  // Stop()
  PodLeaseFollower(const PodLeaseFollower&) = delete;
  PodLeaseFollower& operator=(const PodLeaseFollower&) = delete;

  void Start();  // once
  void Stop();   // idempotent; ends a request in flight and joins. Leases taken stay held.

  bool Synced() const;         // a first list of the node's pods completed
  size_t PodsHolding() const;  // pods that hold at least one lease now

  struct Impl;

 private:
  explicit PodLeaseFollower(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache::pod_leases
