#include "agent/fill/range_fallback.h"

namespace modelcache {

bool OriginIgnoresRanges(const RangeAnswers& fill) {
  return fill.served == 0 && fill.ignored >= kIgnoredRangesBeforeStream;
}

bool ShouldStreamWholeFile(const RangeAnswers& file, const RangeAnswers& fill, bool chunk_can_retry) {
  if (!chunk_can_retry) return true;
  if (file.served == 0 && file.ignored >= kIgnoredRangesBeforeStream) return true;
  return OriginIgnoresRanges(fill);
}

}  // namespace modelcache
