#include "coordinator/policy_runner.h"

#include "common/log_fields.h"
#include "common/status_macros.h"
#include "coordinator/db/store.h"
#include "coordinator/metrics.h"
#include "coordinator/purge_commands.h"
#include "spdlog/spdlog.h"

namespace modelcache {

PolicyRunner::PolicyRunner(CoordinatorStore& store, PurgeCommands& purges,
                           CoordinatorMetrics& metrics, const Clock& clock, PurgePolicy policy,
                           std::chrono::seconds interval, std::function<void()> dispatch)
    : store_(store),
      purges_(purges),
      metrics_(metrics),
      clock_(clock),
      policy_(policy),
      interval_(interval),
      dispatch_(std::move(dispatch)) {}

PolicyRunner::~PolicyRunner() { Stop(); }

void PolicyRunner::Start() { thread_ = std::thread([this] { Loop(); }); }

void PolicyRunner::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status PolicyRunner::RunOnce() {
  const auto started = std::chrono::steady_clock::now();
  absl::Status status = Pass();
  metrics_.ObservePolicyPass(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
      status.ok(), ToUnixMillis(clock_.Now()) / 1000);
  return status;
}

absl::Status PolicyRunner::Pass() {
  ASSIGN_OR_RETURN(Snapshot snapshot, store_.LoadSnapshot());
  PurgePlan plan = Plan(snapshot, policy_, clock_.Now());
  for (const PurgeDecision& decision : plan.decisions) {
    RETURN_IF_ERROR(purges_.Queue(decision, PurgeReasonName(decision.reason)));
  }
  dispatch_();
  return absl::OkStatus();
}

void PolicyRunner::OnUsageStored(const std::set<std::string>& volumes) {
  absl::StatusOr<v1::UsageResponse> usage = store_.Usage(policy_.default_quota_bytes);
  if (!usage.ok()) {
    spdlog::warn("usage read for the quota rule failed {}",
                 LogFields().Add("error", usage.status()).Add(
                     "next", "the quota rule waits for its scheduled pass"));
    return;
  }
  bool crossed = false;
  for (const v1::VolumeUsage& volume : usage->volumes()) {
    if (volumes.count(volume.volume_id()) == 0) continue;
    if (!watermarks_.Observe(volume.volume_id(), volume.used_bytes(), volume.quota_bytes(),
                             policy_.high_watermark)) {
      continue;
    }
    spdlog::info("volume over its high watermark {}",
                 LogFields()
                     .Add("volume", volume.volume_id())
                     .Add("used", volume.used_bytes())
                     .Add("quota", volume.quota_bytes())
                     .Add("next", "policy pass now"));
    crossed = true;
  }
  if (!crossed) return;
  {
    std::lock_guard lock(mutex_);
    run_now_ = true;
  }
  wake_.notify_all();
}

void PolicyRunner::Loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_, [this] { return stopping_ || run_now_; });
    if (stopping_) break;
    run_now_ = false;
    lock.unlock();
    absl::Status status = RunOnce();
    if (!status.ok()) {
      spdlog::error("policy pass failed {}",
                    LogFields().Add("error", status).Add(
                        "next", fmt::format("retried in {} s", interval_.count())));
    }
    lock.lock();
  }
}

}  // namespace modelcache
