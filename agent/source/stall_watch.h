#pragma once
// When a range request counts as stalled: fewer bytes arrived in the last `window` than the
// minimum rate allows (1 byte per second by default, as curl's low-speed check). Pure: the
// caller feeds it the time and the byte count (curl's progress callback) and asks; the
// verdict says what was measured, so a message never claims "no data" when some came.
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

namespace modelcache {

class StallWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // `window` > 0. A transfer is stalled when fewer than `window` seconds times
  // `min_bytes_per_second` bytes arrived during the last `window`.
  StallWatch(Clock::duration window, uint64_t min_bytes_per_second = 1);

  // The transfer started at `now` with nothing received.
  void Start(Clock::time_point now);
  // Counting begins again at `now` from the bytes received so far: the transfer was paused by
  // our side (no room for its bytes yet), which is no stall of the origin's.
  void Restart(Clock::time_point now);
  // `total_bytes` had arrived by `now` (never less than before; times never go back).
  void Observe(Clock::time_point now, uint64_t total_bytes);

  // True once a whole window has passed since Start and fewer than MinBytes() arrived in the
  // window that ends at `now`.
  bool Stalled(Clock::time_point now) const;
  // Bytes that arrived in the window ending at `now` (as far as Observe was told).
  uint64_t BytesInWindow(Clock::time_point now) const;
  // The least a window must bring: window seconds (at least 1) times the minimum rate.
  uint64_t MinBytes() const { return min_bytes_; }
  // What Stalled measured: "2 bytes in the last 3s, below the minimum of 3 (1 byte/s)".
  std::string Describe(Clock::time_point now) const;

 private:
  Clock::duration window_;
  uint64_t min_bytes_per_second_;
  uint64_t min_bytes_;
  Clock::time_point started_{};
  // (time, total bytes by then), oldest first; the first one is at or before the start of
  // the current window, so the count at any time inside the window can be read off.
  std::deque<std::pair<Clock::time_point, uint64_t>> samples_;
};

}  // namespace modelcache
