#include "agent/loop/event_loop.h"

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;

// Runs `task` on the loop thread and waits for it.
void RunOnLoop(EventLoop& loop, std::function<void()> task) {
  std::promise<void> finished;
  loop.Post([&] {
    task();
    finished.set_value();
  });
  ASSERT_EQ(finished.get_future().wait_for(10s), std::future_status::ready);
}

TEST(EventLoop, PostsFromManyThreadsAllRunOnTheLoopThreadInPerThreadOrder) {
  EventLoop loop;
  loop.Start();
  constexpr int kThreads = 8;
  constexpr int kPostsPerThread = 2000;
  // Touched only on the loop thread.
  std::vector<int> last_seen(kThreads, -1);
  int ran = 0;
  std::atomic<int> off_loop_thread{0};
  std::atomic<int> out_of_order{0};
  std::vector<std::thread> posters;
  for (int thread = 0; thread < kThreads; ++thread) {
    posters.emplace_back([&, thread] {
      for (int i = 0; i < kPostsPerThread; ++i) {
        loop.Post([&, thread, i] {
          if (!loop.OnLoopThread()) ++off_loop_thread;
          if (last_seen[thread] != i - 1) ++out_of_order;
          last_seen[thread] = i;
          ++ran;
        });
      }
    });
  }
  for (auto& poster : posters) poster.join();
  int total = 0;
  RunOnLoop(loop, [&] { total = ran; });
  EXPECT_EQ(total, kThreads * kPostsPerThread);
  EXPECT_EQ(off_loop_thread, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_FALSE(loop.OnLoopThread());
}

TEST(EventLoop, TasksPostedBeforeStartRunAfterStart) {
  EventLoop loop;
  std::promise<bool> ran;
  loop.Post([&] { ran.set_value(loop.OnLoopThread()); });
  loop.Start();
  auto result = ran.get_future();
  ASSERT_EQ(result.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(result.get());
}

TEST(EventLoop, RunBlockingRunsWorkOffTheLoopThenDoneOnIt) {
  EventLoop loop;
  loop.Start();
  std::promise<void> finished;
  std::atomic<bool> work_on_loop{true};
  std::atomic<bool> done_on_loop{false};
  std::atomic<int> order{0};
  loop.Post([&] {
    loop.RunBlocking(
        [&] {
          work_on_loop = loop.OnLoopThread();
          order = 1;
        },
        [&] {
          done_on_loop = loop.OnLoopThread() && order == 1;
          finished.set_value();
        });
  });
  ASSERT_EQ(finished.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(work_on_loop);
  EXPECT_TRUE(done_on_loop);
}

TEST(EventLoop, LoopKeepsServingWhileBlockingWorkRuns) {
  EventLoop loop;
  loop.Start();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> done;
  loop.Post([&] { loop.RunBlocking([released] { released.wait(); }, [&] { done.set_value(); }); });
  // The loop thread is free: a posted task runs while the work is blocked.
  RunOnLoop(loop, [] {});
  release.set_value();
  ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
}

TEST(EventLoop, ATaskThatThrowsDoesNotStopTheLoop) {
  EventLoop loop;
  loop.Start();
  loop.Post([] { throw std::runtime_error("bug in a task"); });
  bool ran = false;
  RunOnLoop(loop, [&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(EventLoop, StopClosesHandlesOthersLeftOpenAndJoins) {
  EventLoop loop;
  loop.Start();
  // A repeating timer that nobody closes would keep uv_run going forever.
  auto timer = std::make_unique<uv_timer_t>();
  RunOnLoop(loop, [&] {
    uv_timer_init(loop.Raw(), timer.get());
    uv_timer_start(timer.get(), [](uv_timer_t*) {}, 1, 1);
  });
  loop.Stop();
  EXPECT_TRUE(uv_is_closing(reinterpret_cast<uv_handle_t*>(timer.get())));
  loop.Stop();  // idempotent
}

TEST(EventLoop, NoTaskRunsAfterStop) {
  EventLoop loop;
  loop.Start();
  loop.Stop();
  bool ran = false;
  loop.Post([&] { ran = true; });
  EXPECT_FALSE(ran);
}

TEST(EventLoop, StopAndDestroyWithoutStartIsSafeAndRunsNothing) {
  bool ran = false;
  {
    EventLoop loop;
    loop.Post([&] { ran = true; });
  }
  EXPECT_FALSE(ran);
  EventLoop stopped;
  stopped.Stop();
  stopped.Stop();
}

TEST(EventLoop, DestroyWhileBlockingWorkRunsWaitsForItWithoutRunningDone) {
  std::atomic<bool> work_finished{false};
  std::atomic<bool> done_ran{false};
  std::promise<void> work_started;
  {
    EventLoop loop;
    loop.Start();
    loop.Post([&] {
      loop.RunBlocking(
          [&] {
            work_started.set_value();
            std::this_thread::sleep_for(100ms);  // the work itself, not synchronisation
            work_finished = true;
          },
          [&] { done_ran = true; });
    });
    ASSERT_EQ(work_started.get_future().wait_for(10s), std::future_status::ready);
  }
  EXPECT_TRUE(work_finished);
  EXPECT_FALSE(done_ran);
}

}  // namespace
}  // namespace modelcache
