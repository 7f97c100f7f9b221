#pragma once
// The one source of wall-clock time, injected so that policy code can be tested with a fake.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

namespace modelcache {

class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;

  // Waits on `wake` (with `lock` held, as condition_variable::wait does) until `done()` holds
  // or this clock reads `deadline` or later; returns done(). Code that waits for a time to
  // pass waits here, so that a test's fake clock (tests/testing/fake_clock.h), which wakes
  // its waiters when it is moved, decides when the time has come. This one waits in real time.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& wake,
                         TimePoint deadline, const std::function<bool()>& done) const {
    while (!done()) {
      const TimePoint now = Now();
      if (now >= deadline) return false;
      wake.wait_for(lock, deadline - now);
    }
    return true;
  }
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

inline int64_t ToUnixMillis(Clock::TimePoint time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}
inline Clock::TimePoint FromUnixMillis(int64_t millis) {
  return Clock::TimePoint(std::chrono::milliseconds(millis));
}

}  // namespace modelcache
