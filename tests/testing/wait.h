#pragma once
// Polling with a deadline: the one way tests wait for something they cannot be told about.
#include <chrono>
#include <functional>

namespace modelcache::testing {

// Calls `predicate` until it returns true (then returns true) or `timeout` has passed (then
// returns false after one last call). Sleeps `interval` between calls.
bool PollUntil(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(10));

}  // namespace modelcache::testing
