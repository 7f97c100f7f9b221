#pragma once
// Who a process is, as far as another process on the same machine can tell: what a fill lock
// records so that an agent restarted after kill -9 can see that the lock's holder is gone
// (agent/store/fill_lock.h) instead of waiting for the lock to expire.
#include <cstdint>
#include <optional>
#include <string>

namespace modelcache {

struct ProcessIdentity {
  int64_t pid = 0;
  std::string boot_id;        // /proc/sys/kernel/random/boot_id: new at every boot; "" unknown
  std::string pid_namespace;  // readlink /proc/self/ns/pid, "pid:[4026531836]"; "" unknown
  uint64_t start_ticks = 0;   // field 22 of /proc/<pid>/stat (clock ticks since boot); 0 unknown

  // This process. Blocking (reads /proc); fields it cannot read stay unknown.
  static ProcessIdentity OfThisProcess();
};

// The start time (field 22 of /proc/<pid>/stat) of process `pid` in this process's pid
// namespace; nullopt when there is no such process (or /proc cannot tell). Blocking.
std::optional<uint64_t> ProcessStartTicks(int64_t pid);

}  // namespace modelcache
