#include "agent/loop/event_loop.h"

#include <cassert>
#include <exception>
#include <utility>

#include "common/log_fields.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// One RunBlocking call; owned by libuv between uv_queue_work and the after-work callback.
struct BlockingWork {
  uv_work_t request;
  EventLoop* loop = nullptr;
  std::function<void()> work;
  std::function<void()> done;
};

// A task that throws is a bug in the task, but the exception must not unwind through libuv.
// `next` says what the loop does after it (for the log line).
void RunGuarded(const std::function<void()>& task, const char* what, const char* next) {
  try {
    task();
  } catch (const std::exception& error) {
    spdlog::error("event loop task threw {}",
                  LogFields().Add("task", what).Add("error", error.what()).Add("next", next));
  } catch (...) {
    spdlog::error("event loop task threw {}", LogFields()
                                                  .Add("task", what)
                                                  .Add("error", "a non-std exception")
                                                  .Add("next", next));
  }
}

void CloseIfOpen(uv_handle_t* handle, void* /*arg*/) {
  // Owners of these handles see uv_is_closing() afterwards and must not close them again.
  if (!uv_is_closing(handle)) uv_close(handle, nullptr);
}

}  // namespace

EventLoop::EventLoop() {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &wake_, &EventLoop::OnAsync);
  wake_.data = this;
}

EventLoop::~EventLoop() { Stop(); }

void EventLoop::Start() {
  std::lock_guard lock(mutex_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] {
    // Wait until Start() has published loop_thread_id_ before running any callback.
    { std::lock_guard start_lock(mutex_); }
    uv_run(&loop_, UV_RUN_DEFAULT);
  });
  loop_thread_id_ = thread_.get_id();
}

void EventLoop::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      // The loop thread sees stopping_ in Drain(), drops the queue and closes every handle,
      // after which uv_run() returns and the thread ends.
      if (started_) uv_async_send(&wake_);
    }
  }
  if (OnLoopThread()) return;  // Stop() from a task: the destructor (on another thread) joins.
  if (thread_.joinable()) thread_.join();
  loop_thread_id_ = std::thread::id();
  // wake_.data doubles as the "loop not yet closed" mark, so that Stop() stays idempotent.
  if (wake_.data == nullptr) return;
  if (uv_loop_close(&loop_) == UV_EBUSY) {
    // Never started, or a handle outlived the loop thread: close everything here.
    std::vector<std::function<void()>> dropped;
    {
      std::lock_guard lock(mutex_);
      dropped.swap(pending_);
    }
    uv_walk(&loop_, &CloseIfOpen, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  wake_.data = nullptr;
}

void EventLoop::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      pending_.push_back(std::move(task));
      // Under the lock so that Stop() cannot close wake_ between the check and the send.
      uv_async_send(&wake_);
      return;
    }
  }
  // Dropped: destroyed here, outside the lock, because its destructor may Post() again.
}

void EventLoop::RunBlocking(std::function<void()> work, std::function<void()> done) {
  assert(OnLoopThread() || !started_);
  auto job = std::make_unique<BlockingWork>();
  job->loop = this;
  job->work = std::move(work);
  job->done = std::move(done);
  job->request.data = job.get();
  int error = uv_queue_work(
      &loop_, &job->request,
      [](uv_work_t* request) {
        auto* job = static_cast<BlockingWork*>(request->data);
        RunGuarded(job->work, "blocking work", "its completion runs on the loop anyway");
      },
      [](uv_work_t* request, int status) {
        std::unique_ptr<BlockingWork> job(static_cast<BlockingWork*>(request->data));
        bool stopping;
        {
          std::lock_guard lock(job->loop->mutex_);
          stopping = job->loop->stopping_;
        }
        if (status == UV_ECANCELED || stopping || !job->done) return;
        RunGuarded(job->done, "blocking work completion", "the loop goes on");
      });
  if (error == 0) {
    job.release();  // libuv owns it until the after-work callback
  } else {
    spdlog::error("event loop cannot queue blocking work {}",
                  LogFields()
                      .Add("error", uv_strerror(error))
                      .Add("next", "the work and its completion are dropped"));
  }
}

bool EventLoop::OnLoopThread() const { return std::this_thread::get_id() == loop_thread_id_; }

void EventLoop::OnAsync(uv_async_t* handle) {
  static_cast<EventLoop*>(handle->data)->Drain();
}

void EventLoop::Drain() {
  std::vector<std::function<void()>> batch;
  bool stopping;
  {
    std::lock_guard lock(mutex_);
    batch.swap(pending_);
    stopping = stopping_;
  }
  if (stopping) {
    batch.clear();
    // Closing every handle (ours and those of fill objects still alive) lets uv_run return.
    uv_walk(&loop_, &CloseIfOpen, nullptr);
    return;
  }
  for (auto& task : batch) {
    RunGuarded(task, "posted task", "the loop goes on with the next task");
  }
}

}  // namespace modelcache
