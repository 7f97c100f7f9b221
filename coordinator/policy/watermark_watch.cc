#include "coordinator/policy/watermark_watch.h"

namespace modelcache {

bool WatermarkWatch::Observe(const std::string& volume_id, uint64_t used_bytes,
                             uint64_t quota_bytes, double high_watermark) {
  const bool above =
      quota_bytes > 0 &&
      used_bytes > static_cast<uint64_t>(high_watermark * static_cast<double>(quota_bytes));
  bool& was_above = above_[volume_id];
  const bool crossed = above && !was_above;
  was_above = above;
  return crossed;
}

}  // namespace modelcache
