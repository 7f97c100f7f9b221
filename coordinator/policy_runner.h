#pragma once
// The coordinator's policy loop: every checkUnusedCachedModelsEvery, and at once when a usage
// report takes a volume over its high watermark, it plans purges over a snapshot of the store
// (coordinator/policy/purge_plan.h), queues them (purge_commands.h) and has the connected
// agents' pending commands sent. Runs on a thread of its own.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/clock.h"
#include "coordinator/policy/purge_plan.h"
#include "coordinator/policy/watermark_watch.h"

namespace modelcache {

class CoordinatorMetrics;
class CoordinatorStore;
class PurgeCommands;

class PolicyRunner {
 public:
  // `dispatch` sends the volumes' pending commands to their agents. Everything borrowed must
  // outlive the runner.
  PolicyRunner(CoordinatorStore& store, PurgeCommands& purges, CoordinatorMetrics& metrics,
               const Clock& clock, PurgePolicy policy, std::chrono::seconds interval,
               std::function<void()> dispatch);
  ~PolicyRunner();  // Stop()
  PolicyRunner(const PolicyRunner&) = delete;
  PolicyRunner& operator=(const PolicyRunner&) = delete;

  void Start();
  // Ends the loop and joins its thread. Idempotent.
  void Stop();
  // One pass now, timed and counted in the metrics. Thread-safe.
  absl::Status RunOnce();
  // After usage reports of `volumes` were stored (AgentStreams::OnUsageStored, on the streams'
  // worker thread): a volume that went over its high watermark has the loop pass at once.
  void OnUsageStored(const std::set<std::string>& volumes);

  const PurgePolicy& Policy() const { return policy_; }

 private:
  absl::Status Pass();
  void Loop();

  CoordinatorStore& store_;
  PurgeCommands& purges_;
  CoordinatorMetrics& metrics_;
  const Clock& clock_;
  const PurgePolicy policy_;
  const std::chrono::seconds interval_;
  const std::function<void()> dispatch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  bool run_now_ = false;   // guarded by mutex_: a report crossed a high watermark
  WatermarkWatch watermarks_;  // the streams' worker thread only (OnUsageStored)
  std::thread thread_;
};

}  // namespace modelcache
