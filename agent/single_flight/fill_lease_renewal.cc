#include "agent/single_flight/fill_lease_renewal.h"

namespace modelcache {

FillLeaseRenewal DecideFillLeaseRenewal(Clock::TimePoint last_progress,
                                        Clock::TimePoint lease_expires, Clock::TimePoint now,
                                        std::chrono::milliseconds progress_window) {
  if (now - last_progress <= progress_window) return FillLeaseRenewal::kRenew;
  if (now < lease_expires) return FillLeaseRenewal::kLetLapse;
  return FillLeaseRenewal::kLapsed;
}

const char* FillLeaseRenewalName(FillLeaseRenewal renewal) {
  switch (renewal) {
    case FillLeaseRenewal::kRenew: return "renew";
    case FillLeaseRenewal::kLetLapse: return "let-lapse";
    case FillLeaseRenewal::kLapsed: return "lapsed";
  }
  return "unknown";
}

}  // namespace modelcache
