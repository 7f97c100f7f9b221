// FillGate with lock files only (no coordinator): two agents of one volume, each with its own
// gate, as two nodes sharing an NFS folder. Time is a fake clock the test moves step by step
// (after each step it waits until every gate thread has done what that moment asked), so the
// lease windows are the gate's own, not real time.
#include "agent/single_flight/fill_gate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>
#include <mutex>

#include "agent/loop/event_loop.h"
#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "common/fs.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;

constexpr char kSource[] = "s3://models/m/v1/";

// What one agent's ticket was told, in order.
struct Outcome {
  std::mutex mutex;
  std::vector<std::string> events;
  std::promise<std::string> ended;  // "turn", "published" or "error: ..."
  bool done = false;

  void End(const std::string& what) {
    std::lock_guard lock(mutex);
    events.push_back(what);
    if (!done) {
      done = true;
      ended.set_value(what);
    }
  }
  FillGate::Callbacks Callbacks() {
    FillGate::Callbacks callbacks;
    callbacks.on_turn = [this] { End("turn"); };
    callbacks.on_published = [this](v1::Manifest manifest) { End("published " + manifest.name()); };
    callbacks.on_error = [this](absl::Status status) { End("error: " + status.ToString()); };
    callbacks.on_progress = [this](const v1::EnsureProgress& progress) {
      std::lock_guard lock(mutex);
      events.push_back("progress " + std::to_string(progress.bytes_done()));
    };
    callbacks.on_lost = [this] {
      std::lock_guard lock(mutex);
      events.push_back("lost");
    };
    return callbacks;
  }
  bool Has(const std::string& event) {
    std::lock_guard lock(mutex);
    return std::find(events.begin(), events.end(), event) != events.end();
  }
};

class FillGateTest : public ::testing::Test {
 protected:
  void SetUp() override { loop_.Start(); }
  void TearDown() override { loop_.Stop(); }

  std::unique_ptr<FillGate> Gate(const std::string& node,
                                 std::chrono::milliseconds progress_window = 30s) {
    return std::make_unique<FillGate>(loop_, clock_,
                                      FillGateOptions{.cache_root = dir_.Path(),
                                                      .node_name = node,
                                                      .lease_ttl = 1000ms,
                                                      .poll_interval = 50ms,
                                                      .progress_window = progress_window},
                                      nullptr);
  }
  // Runs `fn` on the loop and waits (tickets live on the loop thread).
  template <typename Fn>
  auto OnLoop(Fn fn) {
    std::promise<decltype(fn())> result;
    loop_.Post([&] { result.set_value(fn()); });
    return result.get_future().get();
  }
  void OnLoopVoid(std::function<void()> fn) {
    std::promise<void> done;
    loop_.Post([&] {
      fn();
      done.set_value();
    });
    done.get_future().get();
  }

  // Moves the clock in steps of 50 ms (the gates' poll interval) until `done()`, for at most
  // `limit` of the clock's time. After each step it waits (real time, with a deadline) until
  // `waiting` gate threads wait for a later time (each renewed, looked at the lock, or gave
  // up) or `done()`. Returns done().
  bool AdvanceUntil(const std::function<bool()>& done, std::chrono::milliseconds limit,
                    size_t waiting) {
    for (auto passed = 0ms; !done() && passed < limit; passed += 50ms) {
      clock_.Advance(50ms);
      if (!testing::PollUntil([&] { return done() || clock_.Settled(waiting); }, 10s, 1ms)) {
        ADD_FAILURE() << "the gate's threads did not settle";
        return done();
      }
    }
    return done();
  }
  // AdvanceUntil the ticket answers: its answer, or "nothing yet".
  std::string AnswerWithin(std::future<std::string>& answer, std::chrono::milliseconds limit,
                           size_t waiting) {
    auto ready = [&] { return answer.wait_for(0ms) == std::future_status::ready; };
    return AdvanceUntil(ready, limit, waiting) ? answer.get() : "nothing yet";
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  EventLoop loop_;
};

// The ticket's first answer, which comes without the clock moving (a turn, an error).
std::string Within(std::future<std::string>& future, std::chrono::milliseconds timeout) {
  if (future.wait_for(timeout) != std::future_status::ready) return "nothing yet";
  return future.get();
}

TEST_F(FillGateTest, SecondAgentWaitsThenSeesThePublishedModel) {
  auto gate_a = Gate("node-a");
  auto gate_b = Gate("node-b");
  Outcome a, b;
  auto ended_a = a.ended.get_future();
  auto ended_b = b.ended.get_future();
  auto ticket_a = OnLoop([&] { return gate_a->Enter("m", "v1", kSource, a.Callbacks()); });
  ASSERT_EQ(Within(ended_a, 5s), "turn");
  auto ticket_b = OnLoop([&] { return gate_b->Enter("m", "v1", kSource, b.Callbacks()); });
  // a holds (renewing), b polls: both wait on the clock.
  EXPECT_EQ(AnswerWithin(ended_b, 3s, 2), "nothing yet") << "b must wait while a fills";

  // a publishes (a manifest in models/) and finishes: b learns of it.
  CacheLayout layout(dir_.Path());
  v1::Manifest manifest;
  manifest.set_name("m");
  manifest.set_version("v1");
  ASSERT_TRUE(CreateDirectories(layout.ModelDir("m", "v1")).ok());
  ASSERT_TRUE(WriteManifest(layout.ManifestPath("m", "v1"), manifest).ok());
  OnLoopVoid([&] { ticket_a->Finish(true); });
  EXPECT_EQ(AnswerWithin(ended_b, 5s, 1), "published m");
  OnLoopVoid([&] {
    ticket_a.reset();
    ticket_b.reset();
  });
  gate_a.reset();
  gate_b.reset();
  EXPECT_FALSE(std::filesystem::exists(layout.LocksDir() / "m@v1.lock"));
}

TEST_F(FillGateTest, WaiterTakesTheTurnWhenTheFillerGivesUp) {
  auto gate_a = Gate("node-a");
  auto gate_b = Gate("node-b");
  Outcome a, b;
  auto ended_a = a.ended.get_future();
  auto ended_b = b.ended.get_future();
  auto ticket_a = OnLoop([&] { return gate_a->Enter("m", "v1", kSource, a.Callbacks()); });
  ASSERT_EQ(Within(ended_a, 5s), "turn");
  auto ticket_b = OnLoop([&] { return gate_b->Enter("m", "v1", kSource, b.Callbacks()); });
  EXPECT_EQ(AnswerWithin(ended_b, 3s, 2), "nothing yet");
  OnLoopVoid([&] { ticket_a->Finish(false); });  // the fill failed: the lock is released
  EXPECT_EQ(AnswerWithin(ended_b, 5s, 1), "turn");
  OnLoopVoid([&] {
    ticket_a.reset();
    ticket_b.reset();
  });
}

TEST_F(FillGateTest, PublishCheckFailsOnceTheLockWasTakenOver) {
  auto gate_a = Gate("node-a");
  Outcome a;
  auto ended_a = a.ended.get_future();
  auto ticket_a = OnLoop([&] { return gate_a->Enter("m", "v1", kSource, a.Callbacks()); });
  ASSERT_EQ(Within(ended_a, 5s), "turn");
  std::function<absl::Status()> check = OnLoop([&] { return ticket_a->PublishCheck(); });
  EXPECT_TRUE(check().ok());
  // Someone else's lock replaces ours (as a take-over after expiry would).
  CacheLayout layout(dir_.Path());
  std::filesystem::path lock = layout.LocksDir() / "m@v1.lock";
  ASSERT_TRUE(WriteFileAtomic(lock, "node=other\npid=1\ntoken=x\nfencing=9\nttl_ms=60000\n").ok());
  absl::Status held = check();
  EXPECT_TRUE(absl::IsAborted(held)) << held;
  EXPECT_TRUE(OnLoop([&] { return ticket_a->Lost(); }));
  OnLoopVoid([&] { ticket_a.reset(); });
  gate_a.reset();
  // The other's lock is left alone.
  EXPECT_TRUE(std::filesystem::exists(lock));
}

TEST_F(FillGateTest, AStalledFillerLetsItsLeaseLapseAndAWaiterTakesOver) {
  // a lands no bytes: after the window (200 ms of the clock) it stops renewing, its 1 s lock
  // expires.
  auto gate_a = Gate("node-a", 200ms);
  auto gate_b = Gate("node-b", 200ms);
  Outcome a, b;
  auto ended_a = a.ended.get_future();
  auto ended_b = b.ended.get_future();
  auto ticket_a = OnLoop([&] { return gate_a->Enter("m", "v1", kSource, a.Callbacks()); });
  ASSERT_EQ(Within(ended_a, 5s), "turn");
  OnLoopVoid([&] { ticket_a->ReportProgress(100, 1000); });  // then nothing more
  auto ticket_b = OnLoop([&] { return gate_b->Enter("m", "v1", kSource, b.Callbacks()); });
  // Not before the window and the lock's lifetime have passed.
  EXPECT_EQ(AnswerWithin(ended_b, 1000ms, 1), "nothing yet");
  EXPECT_EQ(AnswerWithin(ended_b, 5s, 1), "turn") << "the stalled filler's lease never lapsed";
  EXPECT_TRUE(AdvanceUntil([&] { return a.Has("lost"); }, 5s, 1));
  EXPECT_TRUE(OnLoop([&] { return ticket_a->Lost(); }));
  OnLoopVoid([&] {
    ticket_a.reset();
    ticket_b.reset();
  });
}

TEST_F(FillGateTest, AFillerThatLandsBytesKeepsItsLease) {
  auto gate_a = Gate("node-a", 200ms);
  auto gate_b = Gate("node-b", 200ms);
  Outcome a, b;
  auto ended_a = a.ended.get_future();
  auto ended_b = b.ended.get_future();
  auto ticket_a = OnLoop([&] { return gate_a->Enter("m", "v1", kSource, a.Callbacks()); });
  ASSERT_EQ(Within(ended_a, 5s), "turn");
  auto ticket_b = OnLoop([&] { return gate_b->Enter("m", "v1", kSource, b.Callbacks()); });
  // The fill's bytes land 50 ms apart, well within the window, for three lease lifetimes:
  // without renewals, b would have taken the fill.
  FillGate::Ticket* filler = ticket_a.get();
  uint64_t bytes = 0;
  auto fill_moves = [&] {
    bytes += 100;
    filler->ReportProgress(bytes, 1'000'000);
    return ended_b.wait_for(0ms) == std::future_status::ready;
  };
  EXPECT_FALSE(AdvanceUntil(fill_moves, 3s, 2)) << Within(ended_b, 0ms);
  EXPECT_FALSE(a.Has("lost"));
  OnLoopVoid([&] {
    ticket_a.reset();
    ticket_b.reset();
  });
}

TEST_F(FillGateTest, AWaiterOfAnotherSourceIsToldAtOnceNamingBoth) {
  auto gate_a = Gate("node-a");
  auto gate_b = Gate("node-b");
  Outcome a, b, c;
  auto ended_a = a.ended.get_future();
  auto ended_b = b.ended.get_future();
  auto ended_c = c.ended.get_future();
  auto ticket_a = OnLoop([&] { return gate_a->Enter("m", "v1", kSource, a.Callbacks()); });
  ASSERT_EQ(Within(ended_a, 5s), "turn");
  // The attacker's fill holds the lock; the victim names another source.
  auto ticket_b = OnLoop(
      [&] { return gate_b->Enter("m", "v1", "http://attacker.example/w.bin", b.Callbacks()); });
  std::string told = Within(ended_b, 5s);
  EXPECT_NE(told.find("FAILED_PRECONDITION"), std::string::npos) << told;
  EXPECT_NE(told.find("node-a"), std::string::npos) << told;
  EXPECT_NE(told.find(kSource), std::string::npos) << told;
  EXPECT_NE(told.find("http://attacker.example/w.bin"), std::string::npos) << told;
  // The same source written another way waits as usual.
  auto ticket_c =
      OnLoop([&] { return gate_b->Enter("m", "v1", "S3://models/m/v1/", c.Callbacks()); });
  EXPECT_EQ(AnswerWithin(ended_c, 3s, 2), "nothing yet");
  OnLoopVoid([&] {
    ticket_a.reset();
    ticket_b.reset();
    ticket_c.reset();
  });
}

}  // namespace
}  // namespace modelcache
