#pragma once
// A Clock a test moves by hand; thread-safe so that code under test may read it, and wait on
// it (Clock::WaitUntil), from its own threads. Advance wakes every waiter to look at the new
// time.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <map>
#include <set>

#include "common/clock.h"

namespace modelcache::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = FromUnixMillis(1'700'000'000'000)) : now_(start) {}
  TimePoint Now() const override {
    std::lock_guard lock(mutex_);
    return now_;
  }
  void Advance(TimePoint::duration by) {
    // Under mutex_, so that no waiter unregisters (and its condition variable goes away)
    // while it is notified.
    std::lock_guard lock(mutex_);
    now_ += by;
    for (const auto& [wake, count] : waiters_) wake->notify_all();
  }

  // Waits until `done()` or until Advance moved this clock to `deadline`. A notify that comes
  // between the waiter's look at the time and its wait is not lost for long: the waiter looks
  // again every few milliseconds of real time.
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& wake,
                 TimePoint deadline, const std::function<bool()>& done) const override {
    Register(&wake, deadline, +1);
    while (!done() && Now() < deadline) wake.wait_for(lock, std::chrono::milliseconds(5));
    Register(&wake, deadline, -1);
    return done();
  }

  // True when at least `count` threads wait in WaitUntil and each waits for a time still to
  // come: they all did what the time so far asked of them. For tests that move the clock step
  // by step and poll this (with a real deadline) after each step.
  bool Settled(size_t count) const {
    std::lock_guard lock(mutex_);
    return deadlines_.size() >= count &&
           (deadlines_.empty() || *deadlines_.begin() > now_);
  }

 private:
  void Register(std::condition_variable* wake, TimePoint deadline, int delta) const {
    std::lock_guard lock(mutex_);
    if ((waiters_[wake] += delta) == 0) waiters_.erase(wake);
    if (delta > 0) {
      deadlines_.insert(deadline);
    } else {
      deadlines_.erase(deadlines_.find(deadline));
    }
  }

  mutable std::mutex mutex_;
  TimePoint now_;                                           // guarded by mutex_
  // Each waiting condition variable, with how many threads wait on it.
  mutable std::map<std::condition_variable*, int> waiters_;  // guarded by mutex_
  mutable std::multiset<TimePoint> deadlines_;              // guarded by mutex_: one a waiter
};

}  // namespace modelcache::testing
