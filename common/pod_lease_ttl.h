#pragma once
// How long a pod's lease on a model lasts at its agent without a renewal, by default (the
// agent's `leaseTtl`). The coordinator depends on it too: the leases an agent reported stop
// counting once that agent has been silent for longer than a lease could live, so that a dead
// node does not protect its models forever (coordinator/db/store.cc).
#include <chrono>

namespace modelcache {

inline constexpr std::chrono::seconds kDefaultPodLeaseTtl{600};

}  // namespace modelcache
