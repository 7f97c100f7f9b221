#pragma once
// A Clock a test moves by hand; thread-safe so that code under test may read it from its own
// threads.
#include <mutex>

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
    std::lock_guard lock(mutex_);
    now_ += by;
  }

 private:
  mutable std::mutex mutex_;
  TimePoint now_;
};

}  // namespace modelcache::testing
