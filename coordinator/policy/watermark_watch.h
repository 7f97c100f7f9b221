#pragma once
// When the quota rule runs before its next scheduled pass: a usage report that takes a volume
// above its quota's high watermark wakes the policy loop at once, rather than after
// `checkUnusedCachedModelsEvery` (1h). Only the crossing counts: a volume that stays above
// (everything left is pinned or leased) does not wake the loop at every report. Pure state,
// no I/O; not thread-safe (the coordinator's stream worker owns it).
#include <cstdint>
#include <map>
#include <string>

namespace modelcache {

class WatermarkWatch {
 public:
  // true when `used_bytes` is above high_watermark * quota_bytes and was not at the last
  // Observe of the volume (a volume not seen before counts as not above). quota_bytes 0: no
  // quota, never true.
  bool Observe(const std::string& volume_id, uint64_t used_bytes, uint64_t quota_bytes,
               double high_watermark);

 private:
  std::map<std::string, bool> above_;  // by volume id
};

}  // namespace modelcache
