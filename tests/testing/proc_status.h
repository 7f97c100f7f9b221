#pragma once
// What the kernel says about a process a test started: /proc/<pid>/status.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace modelcache::testing {

// A field of /proc/<pid>/status given in kB ("VmHWM": peak resident memory, "VmRSS"), in
// bytes; nullopt when the process or the field is not there.
std::optional<uint64_t> ProcStatusBytes(pid_t pid, std::string_view field);

}  // namespace modelcache::testing
