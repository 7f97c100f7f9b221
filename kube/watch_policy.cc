#include "kube/watch_policy.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "kube/kube_errors.h"

namespace modelcache::kube {
namespace {

std::string MetadataString(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return "";
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto value = metadata->find(key);
  return value != metadata->end() && value->is_string() ? value->get<std::string>() : "";
}

NextStep Backoff(const BackoffPolicy& policy, NextAction action, int failures, double random_unit) {
  NextStep step;
  step.action = action;
  step.failures = failures + 1;
  step.delay = BackoffDelay(policy, step.failures, random_unit);
  return step;
}

}  // namespace

std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int failures, double random_unit) {
  if (failures <= 0) return std::chrono::milliseconds(0);
  const double initial = static_cast<double>(policy.initial.count());
  const double max = static_cast<double>(policy.max.count());
  // Capped before the power can overflow.
  const double exponent = std::min(failures - 1, 62);
  const double full = std::min(max, initial * std::pow(std::max(policy.multiplier, 1.0), exponent));
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double unit = std::clamp(random_unit, 0.0, 1.0);
  const double delay = full * (1.0 - jitter * unit);
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(delay)));
}

WatchEnd ClassifyWatchEnd(const absl::Status& result) {
  if (result.ok()) return WatchEnd::kServerClosed;
  if (IsGone(result)) return WatchEnd::kGone;
  if (result.code() == absl::StatusCode::kCancelled) return WatchEnd::kStopped;
  // UNAVAILABLE without an HTTP status: no answer or a stream cut short.
  if (result.code() == absl::StatusCode::kUnavailable && !HttpStatusOf(result).has_value()) return WatchEnd::kDropped;
  return WatchEnd::kFailed;
}

NextStep AfterWatch(const BackoffPolicy& policy, WatchEnd end, std::chrono::milliseconds lasted, int events,
                    int failures, double random_unit) {
  const bool healthy = events > 0 || lasted >= policy.min_healthy_watch;
  switch (end) {
    case WatchEnd::kStopped:
      return NextStep{NextAction::kStop, std::chrono::milliseconds(0), failures};
    case WatchEnd::kServerClosed:
      // The usual end of a long watch: continue from the last resourceVersion.
      if (healthy) return NextStep{NextAction::kWatch, std::chrono::milliseconds(0), 0};
      return Backoff(policy, NextAction::kWatch, failures, random_unit);
    case WatchEnd::kGone:
      // Expected after a long outage or compaction: relist now, unless it keeps happening.
      if (healthy || failures == 0) return NextStep{NextAction::kRelist, std::chrono::milliseconds(0), failures + 1};
      return Backoff(policy, NextAction::kRelist, failures, random_unit);
    case WatchEnd::kDropped:
    case WatchEnd::kFailed:
      // What was missed while the stream was down is unknown: relist, after a pause.
      return Backoff(policy, NextAction::kRelist, healthy ? 0 : failures, random_unit);
  }
  return Backoff(policy, NextAction::kRelist, failures, random_unit);
}

NextStep AfterList(const BackoffPolicy& policy, const absl::Status& result, int failures, double random_unit) {
  if (result.code() == absl::StatusCode::kCancelled) return NextStep{NextAction::kStop, std::chrono::milliseconds(0), failures};
  if (result.ok()) return NextStep{NextAction::kWatch, std::chrono::milliseconds(0), failures};
  return Backoff(policy, NextAction::kRelist, failures, random_unit);
}

std::string ObjectKey(const nlohmann::json& object) {
  const std::string namespace_name = MetadataString(object, "namespace");
  const std::string name = MetadataString(object, "name");
  return namespace_name.empty() ? name : namespace_name + "/" + name;
}

ResyncPlan PlanResync(const std::map<std::string, std::string>& cached, const std::vector<nlohmann::json>& listed) {
  ResyncPlan plan;
  std::set<std::string> seen;
  for (const nlohmann::json& object : listed) {
    const std::string key = ObjectKey(object);
    seen.insert(key);
    auto found = cached.find(key);
    if (found == cached.end()) {
      plan.added.push_back(key);
    } else if (found->second != MetadataString(object, "resourceVersion")) {
      plan.modified.push_back(key);
    }
  }
  for (const auto& [key, resource_version] : cached) {
    if (seen.count(key) == 0) plan.deleted.push_back(key);
  }
  return plan;
}

}  // namespace modelcache::kube
