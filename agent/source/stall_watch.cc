#include "agent/source/stall_watch.h"

#include <algorithm>

#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// A sample every this long is plenty to read a window of seconds off; it bounds the deque.
constexpr auto kSampleSpacing = std::chrono::milliseconds(100);

}  // namespace

StallWatch::StallWatch(Clock::duration window, uint64_t min_bytes_per_second)
    : window_(window),
      min_bytes_per_second_(min_bytes_per_second),
      min_bytes_(std::max<uint64_t>(
                     1, static_cast<uint64_t>(
                            std::chrono::duration_cast<std::chrono::seconds>(window).count())) *
                 min_bytes_per_second) {}

void StallWatch::Start(Clock::time_point now) {
  started_ = now;
  samples_.clear();
  samples_.emplace_back(now, 0);
}

void StallWatch::Restart(Clock::time_point now) {
  const uint64_t total = samples_.empty() ? 0 : samples_.back().second;
  started_ = now;
  samples_.clear();
  samples_.emplace_back(now, total);
}

void StallWatch::Observe(Clock::time_point now, uint64_t total_bytes) {
  if (samples_.empty()) Start(now);
  auto& last = samples_.back();
  if (total_bytes == last.second) return;  // the count at `now` is the last one's already
  if (samples_.size() >= 2 && now - samples_[samples_.size() - 2].first < kSampleSpacing) {
    last = {now, total_bytes};  // coalesce bursts of callbacks
  } else {
    samples_.emplace_back(now, total_bytes);
  }
  // Keep one sample at or before the window's start, drop the older ones.
  while (samples_.size() >= 2 && samples_[1].first <= now - window_) samples_.pop_front();
}

uint64_t StallWatch::BytesInWindow(Clock::time_point now) const {
  if (samples_.empty()) return 0;
  const Clock::time_point from = now - window_;
  uint64_t at_start = samples_.front().second;
  for (const auto& [time, bytes] : samples_) {
    if (time > from) break;
    at_start = bytes;
  }
  return samples_.back().second - at_start;
}

bool StallWatch::Stalled(Clock::time_point now) const {
  if (samples_.empty() || now - started_ < window_) return false;
  return BytesInWindow(now) < min_bytes_;
}

std::string StallWatch::Describe(Clock::time_point now) const {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(window_).count();
  return fmt::format("{} bytes in the last {}s, below the minimum of {} ({} byte/s)",
                     BytesInWindow(now), seconds, min_bytes_, min_bytes_per_second_);
}

}  // namespace modelcache
