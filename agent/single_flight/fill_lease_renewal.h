#pragma once
// Whether the holder of a fill lease renews it: only while its fill makes progress. A filler
// whose fill has landed no bytes for `progress_window` stops renewing, so its lock file and
// coordinator lease lapse after their ttl and another agent may take the fill over (resuming
// from the staging); the lock re-check before publish keeps the old holder from publishing.
#include <chrono>

#include "common/clock.h"

namespace modelcache {

enum class FillLeaseRenewal {
  kRenew,     // progress within the window: renew as usual
  kLetLapse,  // no progress within the window: do not renew, the lease is still ours
  kLapsed,    // no progress, and the lease expired unrenewed: give the fill up
};

// `last_progress`: when the fill last landed bytes (or took the turn, before its first bytes);
// `lease_expires`: when the lease runs out without a renew. The window includes its end.
FillLeaseRenewal DecideFillLeaseRenewal(Clock::TimePoint last_progress,
                                        Clock::TimePoint lease_expires, Clock::TimePoint now,
                                        std::chrono::milliseconds progress_window);

const char* FillLeaseRenewalName(FillLeaseRenewal renewal);  // "renew", "let-lapse", "lapsed"

}  // namespace modelcache
