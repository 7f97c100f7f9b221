// kube/watch_policy.h: the decisions of a watch, without a server. The backoff is checked on
// a fake clock: an API server that stays down costs a few attempts a minute, never a busy loop.
#include "kube/watch_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/cord.h"
#include "kube/kube_errors.h"
#include "kube/resource.h"
#include "tests/testing/fake_clock.h"

namespace modelcache::kube {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;

absl::Status Answer(long code) {
  return StatusFromResponse(code, "{\"kind\":\"Status\",\"message\":\"m\",\"code\":" + std::to_string(code) + "}",
                            {"watch", &Pods(), "", "", {}});
}

TEST(KubeWatchPolicy, BackoffDoublesUpToTheCap) {
  BackoffPolicy policy;  // 500 ms, x2, 30 s
  EXPECT_EQ(BackoffDelay(policy, 0, 0.0), milliseconds(0));
  EXPECT_EQ(BackoffDelay(policy, 1, 0.0), milliseconds(500));
  EXPECT_EQ(BackoffDelay(policy, 2, 0.0), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(policy, 4, 0.0), milliseconds(4000));
  EXPECT_EQ(BackoffDelay(policy, 7, 0.0), milliseconds(30'000));
  EXPECT_EQ(BackoffDelay(policy, 1000, 0.0), milliseconds(30'000)) << "no overflow";
}

TEST(KubeWatchPolicy, JitterShortensWithinItsShare) {
  BackoffPolicy policy;
  policy.jitter = 0.5;
  EXPECT_EQ(BackoffDelay(policy, 3, 0.5), milliseconds(1500));
  for (double unit : {0.0, 0.25, 0.999}) {
    const milliseconds delay = BackoffDelay(policy, 3, unit);
    EXPECT_GE(delay, milliseconds(1000));
    EXPECT_LE(delay, milliseconds(2000));
  }
  EXPECT_NE(BackoffDelay(policy, 3, 0.1), BackoffDelay(policy, 3, 0.9)) << "clients do not come back in step";
}

TEST(KubeWatchPolicy, HowAWatchEnded) {
  EXPECT_EQ(ClassifyWatchEnd(absl::OkStatus()), WatchEnd::kServerClosed);
  EXPECT_EQ(ClassifyWatchEnd(Answer(410)), WatchEnd::kGone);
  EXPECT_EQ(ClassifyWatchEnd(absl::CancelledError("stop")), WatchEnd::kStopped);
  EXPECT_EQ(ClassifyWatchEnd(absl::UnavailableError("transfer closed with outstanding read data")), WatchEnd::kDropped);
  EXPECT_EQ(ClassifyWatchEnd(Answer(503)), WatchEnd::kFailed);
  EXPECT_EQ(ClassifyWatchEnd(Answer(403)), WatchEnd::kFailed);
}

TEST(KubeWatchPolicy, AHealthyWatchThatEndsIsResumedAtOnce) {
  const NextStep step = AfterWatch({}, WatchEnd::kServerClosed, milliseconds(300'000), 12, 3, 0.5);
  EXPECT_EQ(step.action, NextAction::kWatch);
  EXPECT_EQ(step.delay, milliseconds(0));
  EXPECT_EQ(step.failures, 0) << "a healthy watch resets the failures";
}

TEST(KubeWatchPolicy, AServerThatClosesEveryWatchAtOnceCannotMakeABusyLoop) {
  BackoffPolicy policy;
  int failures = 0;
  milliseconds waited{0};
  for (int attempt = 0; attempt < 10; ++attempt) {
    const NextStep step = AfterWatch(policy, WatchEnd::kServerClosed, milliseconds(2), 0, failures, 0.0);
    EXPECT_EQ(step.action, NextAction::kWatch);
    EXPECT_GT(step.delay, milliseconds(0));
    waited += step.delay;
    failures = step.failures;
  }
  EXPECT_GE(waited, milliseconds(60'000));
}

TEST(KubeWatchPolicy, GoneRelistsAtOnceButNotForever) {
  const NextStep first = AfterWatch({}, WatchEnd::kGone, milliseconds(10), 0, 0, 0.0);
  EXPECT_EQ(first.action, NextAction::kRelist);
  EXPECT_EQ(first.delay, milliseconds(0));
  const NextStep again = AfterWatch({}, WatchEnd::kGone, milliseconds(10), 0, first.failures, 0.0);
  EXPECT_EQ(again.action, NextAction::kRelist);
  EXPECT_GT(again.delay, milliseconds(0));
}

TEST(KubeWatchPolicy, ADroppedStreamRelistsAfterABackoff) {
  const NextStep healthy = AfterWatch({}, WatchEnd::kDropped, milliseconds(60'000), 5, 4, 0.0);
  EXPECT_EQ(healthy.action, NextAction::kRelist);
  EXPECT_EQ(healthy.delay, milliseconds(500)) << "after a healthy watch: the first step of the backoff";
  const NextStep failing = AfterWatch({}, WatchEnd::kFailed, milliseconds(5), 0, 4, 0.0);
  EXPECT_EQ(failing.action, NextAction::kRelist);
  EXPECT_EQ(failing.delay, milliseconds(8000));
  EXPECT_EQ(AfterWatch({}, WatchEnd::kStopped, milliseconds(5), 0, 4, 0.0).action, NextAction::kStop);
}

// The informer's loop while the API server refuses every connection, on a fake clock: the
// attempts in ten minutes are few, and they keep going.
TEST(KubeWatchPolicy, ServerDownCostsFewAttemptsOnAFakeClock) {
  testing::FakeClock clock;
  const auto start = clock.Now();
  BackoffPolicy policy;
  int failures = 0;
  int attempts = 0;
  uint64_t seed = 7;
  std::vector<int> attempts_per_minute(10, 0);
  while (clock.Now() - start < std::chrono::minutes(10)) {
    ++attempts;
    ++attempts_per_minute[std::chrono::duration_cast<std::chrono::minutes>(clock.Now() - start).count()];
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    const NextStep step = AfterList(policy, absl::UnavailableError("connection refused"), failures,
                                    static_cast<double>(seed >> 11) / static_cast<double>(1ull << 53));
    ASSERT_EQ(step.action, NextAction::kRelist);
    clock.Advance(step.delay);
    failures = step.failures;
  }
  EXPECT_LE(attempts_per_minute[0], 12) << "the first minute backs off quickly";
  for (int minute = 2; minute < 10; ++minute) {
    EXPECT_GE(attempts_per_minute[minute], 2) << "still trying in minute " << minute;
    EXPECT_LE(attempts_per_minute[minute], 4) << "at most one try per 15-30 s in minute " << minute;
  }
  EXPECT_EQ(AfterList(policy, absl::OkStatus(), failures, 0.0).action, NextAction::kWatch);
  EXPECT_EQ(AfterList(policy, absl::OkStatus(), failures, 0.0).failures, failures)
      << "a good list does not reset the backoff; a healthy watch does";
}

nlohmann::json Object(const std::string& namespace_name, const std::string& name, const std::string& resource_version) {
  nlohmann::json object = {{"metadata", {{"name", name}, {"resourceVersion", resource_version}}}};
  if (!namespace_name.empty()) object["metadata"]["namespace"] = namespace_name;
  return object;
}

TEST(KubeWatchPolicy, ResyncSaysWhatToAddChangeAndDrop) {
  const std::map<std::string, std::string> cached = {{"a/keep", "5"}, {"a/changed", "6"}, {"b/vanished", "7"}};
  const ResyncPlan plan = PlanResync(cached, {Object("a", "keep", "5"), Object("a", "changed", "9"), Object("c", "new", "10")});
  EXPECT_THAT(plan.added, ElementsAre("c/new"));
  EXPECT_THAT(plan.modified, ElementsAre("a/changed"));
  EXPECT_THAT(plan.deleted, ElementsAre("b/vanished"));
  EXPECT_EQ(ObjectKey(Object("", "pv-1", "1")), "pv-1");
  EXPECT_EQ(ObjectKey(Object("ns", "pvc", "1")), "ns/pvc");
}

}  // namespace
}  // namespace modelcache::kube
