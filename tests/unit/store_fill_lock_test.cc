#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/store/fill_lock.h"
#include "common/fs.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The shared volume's agents all read this one clock.
using testing::FakeClock;

class FillLockTest : public ::testing::Test {
 protected:
  FillLocks Agent(const std::string& node, int64_t pid) {
    return FillLocks(layout_, node, clock_, ttl_, pid);
  }
  // A process with a full identity, judging other holders by `running`: pid -> start ticks.
  FillLocks Process(const std::string& node, ProcessIdentity self,
                    std::map<int64_t, uint64_t>* running) {
    return FillLocks(layout_, node, clock_, ttl_, std::move(self),
                     [running](int64_t pid) -> std::optional<uint64_t> {
                       auto found = running->find(pid);
                       if (found == running->end()) return std::nullopt;
                       return found->second;
                     });
  }
  static ProcessIdentity Identity(int64_t pid, uint64_t start_ticks, std::string boot = "boot-1",
                                  std::string pid_namespace = "pid:[1]") {
    return ProcessIdentity{.pid = pid,
                           .boot_id = std::move(boot),
                           .pid_namespace = std::move(pid_namespace),
                           .start_ticks = start_ticks};
  }
  testing::TempDir dir_;
  CacheLayout layout_{dir_.Path() / "cache"};
  FakeClock clock_;
  milliseconds ttl_{30'000};
};

TEST_F(FillLockTest, AcquireWritesOwnerAndFencingOne) {
  FillLocks agent = Agent("node-a", 11);
  absl::StatusOr<FillLock> lock = agent.TryAcquire("llama", "v1");
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(lock->path, layout_.LocksDir() / "llama@v1.lock");
  EXPECT_EQ(lock->holder.fencing, 1u);
  EXPECT_EQ(lock->holder.expires, clock_.Now() + ttl_);
  absl::StatusOr<FillLockHolder> holder = agent.ReadHolder("llama", "v1");
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->node, "node-a");
  EXPECT_EQ(holder->pid, 11);
  EXPECT_EQ(holder->token, lock->holder.token);
  EXPECT_EQ(holder->expires, lock->holder.expires);
  EXPECT_TRUE(agent.CheckHeld(*lock).ok());
}

TEST(FillLockHolderGone, JudgesOnlyHoldersOfThisNodeItCanSee) {
  FillLockHolder holder{.node = "node-a", .pid = 40, .boot_id = "boot-1",
                        .pid_namespace = "pid:[1]", .start_ticks = 500};
  const ProcessIdentity self{.pid = 41, .boot_id = "boot-1", .pid_namespace = "pid:[1]",
                             .start_ticks = 900};
  // Its pid runs, started when the holder did: alive.
  EXPECT_FALSE(FillLockHolderGone(holder, "node-a", self, 500).has_value());
  // Its pid is gone, or is another process now: gone, and the reason says which.
  std::optional<std::string> gone = FillLockHolderGone(holder, "node-a", self, std::nullopt);
  ASSERT_TRUE(gone.has_value());
  EXPECT_NE(gone->find("pid 40"), std::string::npos) << *gone;
  EXPECT_NE(gone->find("no longer running"), std::string::npos) << *gone;
  gone = FillLockHolderGone(holder, "node-a", self, 777);
  ASSERT_TRUE(gone.has_value());
  EXPECT_NE(gone->find("another process"), std::string::npos) << *gone;
  // Another boot of this machine: every process of the earlier one is gone.
  FillLockHolder before_reboot = holder;
  before_reboot.boot_id = "boot-0";
  EXPECT_TRUE(FillLockHolderGone(before_reboot, "node-a", self, 500).has_value());
  // Another node, another pid namespace, or a lock without identity: never judged.
  EXPECT_FALSE(FillLockHolderGone(holder, "node-b", self, std::nullopt).has_value());
  FillLockHolder other_container = holder;
  other_container.pid_namespace = "pid:[2]";
  EXPECT_FALSE(FillLockHolderGone(other_container, "node-a", self, std::nullopt).has_value());
  FillLockHolder old_agent{.node = "node-a", .pid = 40};
  EXPECT_FALSE(FillLockHolderGone(old_agent, "node-a", self, std::nullopt).has_value());
  ProcessIdentity unknown_self{.pid = 41};
  EXPECT_FALSE(FillLockHolderGone(holder, "node-a", unknown_self, std::nullopt).has_value());
  // Its own lock is never gone.
  FillLockHolder own = holder;
  own.pid = self.pid;
  own.start_ticks = self.start_ticks;
  EXPECT_FALSE(FillLockHolderGone(own, "node-a", self, self.start_ticks).has_value());
}

TEST_F(FillLockTest, ALockOfADeadProcessOfThisNodeIsTakenOverBeforeItExpires) {
  std::map<int64_t, uint64_t> running = {{40, 500}, {41, 900}};
  FillLocks killed = Process("node-a", Identity(40, 500), &running);
  absl::StatusOr<FillLock> old_lock = killed.TryAcquire("llama", "v1");
  ASSERT_TRUE(old_lock.ok()) << old_lock.status();
  absl::StatusOr<FillLockHolder> recorded = killed.ReadHolder("llama", "v1");
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->boot_id, "boot-1");
  EXPECT_EQ(recorded->pid_namespace, "pid:[1]");
  EXPECT_EQ(recorded->start_ticks, 500u);

  FillLocks restarted = Process("node-a", Identity(41, 900), &running);
  clock_.Advance(seconds(1));
  EXPECT_EQ(restarted.TryAcquire("llama", "v1").status().code(), absl::StatusCode::kAlreadyExists)
      << "the holder still runs";
  running.erase(40);  // kill -9
  absl::StatusOr<FillLock> taken = restarted.TryAcquire("llama", "v1");
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->holder.fencing, 2u);
  EXPECT_EQ(taken->holder.pid, 41);
  EXPECT_EQ(killed.CheckHeld(*old_lock).code(), absl::StatusCode::kAborted);
}

TEST_F(FillLockTest, ALiveOrForeignHolderIsWaitedForUntilItsLockExpires) {
  std::map<int64_t, uint64_t> running = {{40, 500}, {41, 900}};
  FillLocks holder = Process("node-a", Identity(40, 500), &running);
  ASSERT_TRUE(holder.TryAcquire("llama", "v1").ok());
  ASSERT_TRUE(holder.TryAcquire("other", "v1").ok());
  running.erase(40);
  // Another node cannot see node-a's processes.
  FillLocks elsewhere = Process("node-b", Identity(41, 900), &running);
  EXPECT_EQ(elsewhere.TryAcquire("llama", "v1").status().code(), absl::StatusCode::kAlreadyExists);
  // Nor another container of node-a (its own pid namespace).
  FillLocks container = Process("node-a", Identity(41, 900, "boot-1", "pid:[9]"), &running);
  EXPECT_EQ(container.TryAcquire("other", "v1").status().code(), absl::StatusCode::kAlreadyExists);
  clock_.Advance(ttl_ + milliseconds(1));
  EXPECT_TRUE(container.TryAcquire("other", "v1").ok());
}

TEST_F(FillLockTest, SecondAcquireFailsNamingTheOwner) {
  FillLocks a = Agent("node-a", 11);
  FillLocks b = Agent("node-b", 22);
  ASSERT_TRUE(a.TryAcquire("llama", "v1").ok());
  clock_.Advance(seconds(29));
  absl::StatusOr<FillLock> second = b.TryAcquire("llama", "v1");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find("node-a pid 11"), absl::string_view::npos)
      << second.status();
  // Another model is independent.
  EXPECT_TRUE(b.TryAcquire("llama", "v2").ok());
}

TEST_F(FillLockTest, TheHoldersSourceIsWrittenAndReadBack) {
  FillLocks a = Agent("node-a", 11);
  absl::StatusOr<FillLock> lock = a.TryAcquire("llama", "v1", "s3://models/llama/v1/?x=a=b");
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<FillLockHolder> holder = Agent("node-b", 22).ReadHolder("llama", "v1");
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->source, "s3://models/llama/v1/?x=a=b");
  // A take-over writes the new holder's source.
  clock_.Advance(ttl_ + seconds(1));
  ASSERT_TRUE(Agent("node-b", 22).TryAcquire("llama", "v1", "http://h/m/").ok());
  EXPECT_EQ(a.ReadHolder("llama", "v1")->source, "http://h/m/");
  // A source that could forge a line is refused.
  EXPECT_EQ(a.TryAcquire("llama", "v2", "http://h/\nfencing=9").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FillLockTest, ALockFileOfAnOlderAgentWithoutSourceIsRead) {
  ASSERT_TRUE(CreateDirectories(layout_.LocksDir()).ok());
  ASSERT_TRUE(WriteFileAtomic(layout_.LocksDir() / "llama@v1.lock",
                              "node=old\npid=7\ntoken=abc\nfencing=3\nttl_ms=30000\n")
                  .ok());
  absl::StatusOr<FillLockHolder> holder = Agent("node-a", 11).ReadHolder("llama", "v1");
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->node, "old");
  EXPECT_EQ(holder->fencing, 3u);
  EXPECT_EQ(holder->source, "");
}

TEST_F(FillLockTest, ExpiredLockIsTakenOverWithNextFencingAndOldOwnerLosesIt) {
  FillLocks a = Agent("node-a", 11);
  FillLocks b = Agent("node-b", 22);
  absl::StatusOr<FillLock> old_lock = a.TryAcquire("llama", "v1");
  ASSERT_TRUE(old_lock.ok());
  clock_.Advance(ttl_ + milliseconds(1));
  EXPECT_EQ(a.CheckHeld(*old_lock).code(), absl::StatusCode::kAborted);  // expired

  absl::StatusOr<FillLock> new_lock = b.TryAcquire("llama", "v1");
  ASSERT_TRUE(new_lock.ok()) << new_lock.status();
  EXPECT_EQ(new_lock->holder.fencing, 2u);
  EXPECT_TRUE(b.CheckHeld(*new_lock).ok());

  absl::Status renew = a.Renew(*old_lock);
  EXPECT_EQ(renew.code(), absl::StatusCode::kAborted);
  EXPECT_NE(renew.message().find("node-b"), absl::string_view::npos) << renew;
  absl::Status held = a.CheckHeld(*old_lock);
  EXPECT_EQ(held.code(), absl::StatusCode::kAborted);
  EXPECT_NE(held.message().find("node-b"), absl::string_view::npos) << held;
  EXPECT_EQ(a.Release(*old_lock).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(b.CheckHeld(*new_lock).ok());  // the old owner's release did not remove it

  clock_.Advance(ttl_ + milliseconds(1));
  absl::StatusOr<FillLock> third = a.TryAcquire("llama", "v1");
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->holder.fencing, 3u);
  // No moved-aside files are left.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(layout_.LocksDir())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(FillLockTest, RenewKeepsTheLockPastTheOriginalExpiry) {
  FillLocks a = Agent("node-a", 11);
  FillLocks b = Agent("node-b", 22);
  absl::StatusOr<FillLock> lock = a.TryAcquire("llama", "v1");
  ASSERT_TRUE(lock.ok());
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(ttl_ / 2);
    ASSERT_TRUE(a.Renew(*lock).ok());
  }
  EXPECT_EQ(lock->holder.expires, clock_.Now() + ttl_);
  EXPECT_TRUE(a.CheckHeld(*lock).ok());
  EXPECT_EQ(b.TryAcquire("llama", "v1").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(FillLockTest, ReleaseFreesTheLockForOthers) {
  FillLocks a = Agent("node-a", 11);
  FillLocks b = Agent("node-b", 22);
  absl::StatusOr<FillLock> lock = a.TryAcquire("llama", "v1");
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(a.Release(*lock).ok());
  EXPECT_EQ(a.ReadHolder("llama", "v1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(a.CheckHeld(*lock).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(a.Release(*lock).ok());  // twice is harmless
  EXPECT_TRUE(b.TryAcquire("llama", "v1").ok());
}

TEST_F(FillLockTest, UnreadableLockExpiresByItsMtime) {
  FillLocks a = Agent("node-a", 11);
  ASSERT_TRUE(CreateDirectories(layout_.LocksDir()).ok());
  fs::path path = a.LockPath("llama", "v1");
  ASSERT_TRUE(WriteFileAtomic(path, "not a lock").ok());
  // Its mtime is the real time, far beyond the fake clock's: it counts as fresh.
  EXPECT_EQ(a.TryAcquire("llama", "v1").status().code(), absl::StatusCode::kAlreadyExists);
  fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::hours(24 * 365 * 30));
  absl::StatusOr<FillLock> lock = a.TryAcquire("llama", "v1");
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_TRUE(a.CheckHeld(*lock).ok());
}

TEST_F(FillLockTest, ConcurrentTakeoversOfAnExpiredLockHaveOneWinner) {
  for (int round = 0; round < 10; ++round) {
    std::string version = "r" + std::to_string(round);
    FillLocks first = Agent("node-first", 1);
    ASSERT_TRUE(first.TryAcquire("m", version).ok());
    clock_.Advance(ttl_ + milliseconds(1));
    constexpr int kAgents = 6;
    std::vector<absl::StatusOr<FillLock>> results(kAgents, absl::UnknownError("not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < kAgents; ++i) {
      threads.emplace_back([this, &results, &version, i] {
        FillLocks agent = Agent("node-" + std::to_string(i), 100 + i);
        results[i] = agent.TryAcquire("m", version);
      });
    }
    for (std::thread& thread : threads) thread.join();
    int winners = 0;
    for (const auto& result : results) {
      if (result.ok()) {
        ++winners;
        EXPECT_EQ(result->holder.fencing, 2u);
        EXPECT_TRUE(first.CheckHeld(*result).ok());
      } else {
        EXPECT_TRUE(absl::IsAlreadyExists(result.status()) || absl::IsAborted(result.status()))
            << result.status();
      }
    }
    EXPECT_EQ(winners, 1) << "round " << round;
  }
}

TEST_F(FillLockTest, TakeOverInProgressElsewhereIsReportedAsBusy) {
  FillLocks a = Agent("node-a", 11);
  FillLocks b = Agent("node-b", 22);
  ASSERT_TRUE(a.TryAcquire("llama", "v1").ok());
  clock_.Advance(ttl_ + milliseconds(1));
  // node-c has claimed the take-over (its break file is fresh by the real clock's mtime).
  fs::path break_path = a.LockPath("llama", "v1");
  break_path += ".break";
  ASSERT_TRUE(WriteFileAtomic(break_path, "node=node-c\npid=33\ntoken=t\n").ok());
  absl::StatusOr<FillLock> lock = b.TryAcquire("llama", "v1");
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(lock.status().message().find("node-c"), absl::string_view::npos) << lock.status();

  // A breaker that died long ago does not block the model forever.
  fs::last_write_time(break_path,
                      fs::file_time_type::clock::now() - std::chrono::hours(24 * 365 * 30));
  lock = b.TryAcquire("llama", "v1");
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(lock->holder.fencing, 2u);
  EXPECT_FALSE(fs::exists(break_path));
}

TEST_F(FillLockTest, InvalidNamesAreRejected) {
  FillLocks a = Agent("node-a", 11);
  EXPECT_EQ(a.TryAcquire("../x", "v1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.TryAcquire("x", "").status().code(), absl::StatusCode::kInvalidArgument);
  FillLocks bad_node = Agent("node\nfencing=9", 1);
  EXPECT_EQ(bad_node.TryAcquire("x", "v1").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelcache
