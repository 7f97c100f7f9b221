#pragma once
// The one source of wall-clock time, injected so that policy code can be tested with a fake.
#include <chrono>

namespace modelcache {

class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
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
