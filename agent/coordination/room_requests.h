#pragma once
// Room on demand, the agent's side: a fill that does not fit on the volume asks the
// coordinator to purge just enough least recently used copies (coordinator.proto MakeRoom)
// and waits. One thread of its own makes the calls one after the other, so the event loop
// never blocks on the coordinator; the coordinator runs them one at a time anyway.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace modelcache {

class VolumeClient;

class RoomRequests {
 public:
  // `client` must outlive this object. `timeout` bounds each call (the purges included).
  RoomRequests(VolumeClient& client, std::string volume_id, std::chrono::milliseconds timeout);
  ~RoomRequests();  // Stop()
  RoomRequests(const RoomRequests&) = delete;
  RoomRequests& operator=(const RoomRequests&) = delete;

  // Thread-safe. Asks for `bytes_short` bytes of room for name@version; `done` runs on this
  // object's thread: OK once the coordinator purged enough, else why not (RESOURCE_EXHAUSTED:
  // not enough it may purge; UNAVAILABLE: no coordinator to ask). Never after Stop().
  void Ask(std::string name, std::string version, uint64_t bytes_short,
           std::function<void(absl::Status)> done);
  // Joins the thread; requests not yet made are dropped without calling their `done`.
  void Stop();

 private:
  struct Request {
    std::string name;
    std::string version;
    uint64_t bytes_short = 0;
    std::function<void(absl::Status)> done;
  };
  void Run();
  absl::Status Make(const Request& request);

  VolumeClient& client_;
  const std::string volume_id_;
  const std::chrono::milliseconds timeout_;
  std::mutex mutex_;  // guards queue_ and stopping_
  std::condition_variable wake_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts in the constructor
};

}  // namespace modelcache
