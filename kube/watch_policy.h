#pragma once
// The decisions of a watch (kube/informer.h), as pure functions so they can be tested without
// a server or a clock: how long to wait after a failure, what to do when a watch ends, and
// what a relist changes in the cache.
//
//   list ──ok──> watch from the list's resourceVersion ──┬─ server ended it (timeout) ──> watch again
//    ^                                                   ├─ 410 Gone ─────────────────> relist
//    └──────────── after a backoff ──────────────────────┴─ dropped / error ──────────> relist
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"

namespace modelcache::kube {

struct BackoffPolicy {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{30'000};
  double multiplier = 2.0;
  // Each delay is drawn from [delay * (1 - jitter), delay]: many clients that lost the same
  // server do not come back in step.
  double jitter = 0.5;
  // A watch that ends (even cleanly) sooner than this counts as a failure, so a server that
  // closes every watch at once cannot make a busy loop.
  std::chrono::milliseconds min_healthy_watch{1'000};
};

// The wait before the attempt after `failures` consecutive failures (>= 1), for a
// `random_unit` drawn uniformly from [0, 1). Zero failures: no wait.
std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int failures, double random_unit);

enum class WatchEnd {
  kServerClosed,  // the stream ended cleanly (timeoutSeconds)
  kGone,          // 410: the resourceVersion is older than the server keeps
  kDropped,       // the connection failed or was cut (the server went away)
  kFailed,        // any other error (401, 403, 5xx, a bad event)
  kStopped,       // we were asked to stop
};

// What a watch's result means.
WatchEnd ClassifyWatchEnd(const absl::Status& result);

enum class NextAction { kWatch, kRelist, kStop };

struct NextStep {
  NextAction action = NextAction::kRelist;
  std::chrono::milliseconds delay{0};
  int failures = 0;  // consecutive failures after this step, for the next decision
};

// After a watch that ended with `end`, having lasted `lasted` and delivered `events` events
// (bookmarks included), with `failures` consecutive failures before it.
NextStep AfterWatch(const BackoffPolicy& policy, WatchEnd end, std::chrono::milliseconds lasted, int events,
                    int failures, double random_unit);

// After a list attempt: watch at once when it worked, else relist after a backoff. A list that
// works does not reset the failure count (a watch that keeps failing after good lists must
// still back off); only a healthy watch does.
NextStep AfterList(const BackoffPolicy& policy, const absl::Status& result, int failures, double random_unit);

// "namespace/name" ("name" for cluster-scoped objects): the cache key of an object.
std::string ObjectKey(const nlohmann::json& object);

// What a relist changes in a cache that held `cached` (key -> resourceVersion).
struct ResyncPlan {
  std::vector<std::string> added;     // listed, not cached
  std::vector<std::string> modified;  // listed with another resourceVersion
  std::vector<std::string> deleted;   // cached, no longer listed: tell the consumer to drop them
};
ResyncPlan PlanResync(const std::map<std::string, std::string>& cached, const std::vector<nlohmann::json>& listed);

}  // namespace modelcache::kube
