#pragma once
// The agent's one libuv loop thread. It owns all fill state; other threads talk to it only by
// Post(). uv_async_send coalesces wake-ups, so the callback drains the whole queue.
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <uv.h>

namespace modelcache {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();  // stops the loop, runs no more tasks, joins the thread
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Start();  // starts the thread
  void Stop();   // idempotent; closes the loop's handles and joins

  // Thread-safe. Runs `task` on the loop thread, in posting order.
  void Post(std::function<void()> task);
  // Runs `work` on libuv's thread pool (blocking I/O), then `done` on the loop thread.
  // Call on the loop thread.
  void RunBlocking(std::function<void()> work, std::function<void()> done);

  bool OnLoopThread() const;
  uv_loop_t* Raw() { return &loop_; }

 private:
  static void OnAsync(uv_async_t* handle);
  void Drain();

  uv_loop_t loop_;
  uv_async_t wake_;
  std::thread thread_;
  std::thread::id loop_thread_id_;
  std::mutex mutex_;
  std::vector<std::function<void()>> pending_;
  bool stopping_ = false;
  bool started_ = false;
};

}  // namespace modelcache
