#pragma once
// Cross-node single-flight when the coordinator cannot be reached: a lock file per model on
// the shared volume, at LocksDir()/<name>@<version>.lock, safe on NFSv3+.
//
// The file is created whole and exclusively (CreateFileExclusive: link(2))
// and holds key=value lines: node, pid, token (random, unique per acquisition), fencing,
// ttl_ms. It expires at its mtime + ttl_ms; Renew sets the mtime (explicitly, from the
// injected clock, so nodes compare times of one clock source, not the NFS server's).
// Lease ttl should be well above NFS attribute caching (actimeo, up to 60 s).
//
// Taking over an expired lock replaces the file in one rename, under a second exclusive
// "<lock>.break" file that serialises contenders, after checking it is still the expired
// one; releasing moves our own file aside and checks what it moved. Timing (clock skew, NFS
// caching) can at worst make a holder lose its lock early: a holder calls CheckHeld right
// before publishing. Fencing numbers grow by one at each take-over of an expired lock (a
// released lock starts again at 1); the random token tells holders apart.
//
// A lock also records which process holds it (boot_id, pid_ns, start_ticks: see
// process_identity.h). An agent restarted on the same node after kill -9 finds its own dead
// lock: when the lock names this node and a process that is certainly gone (another boot of
// this machine, or a pid of this pid namespace that no longer runs or now is another
// process), it is taken over at once, as an expired one, instead of after its ttl.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/store/layout.h"
#include "agent/store/process_identity.h"
#include "common/clock.h"

namespace modelcache {

// What a lock file says.
struct FillLockHolder {
  std::string node;
  int64_t pid = 0;
  std::string token;
  uint64_t fencing = 0;
  std::chrono::milliseconds ttl{0};
  Clock::TimePoint expires;  // mtime + ttl
  // The holding process (optional lines, written since they exist; empty/0 when unknown).
  std::string boot_id;
  std::string pid_namespace;
  uint64_t start_ticks = 0;
  // The source URI the holder fills from (the "source" line, written since this field
  // exists; empty in older agents' lock files): a waiter that asked for another source is
  // told at once instead of waiting for a model it will not be served.
  std::string source;
};

// Pure. Why the holder of a lock that has not expired yet is certainly gone, or nullopt when
// it may still run: only a lock of `node` (this node) can be judged, by the identity `self`
// of the judging process and `holder_start_ticks_now`, what /proc says now about the
// holder's pid in this pid namespace (nullopt: no such process). Gone: the holder ran in
// another boot of this machine; or in this boot and pid namespace, and its pid is gone or
// belongs to a process that started at another time. A lock without the identity lines
// (an older agent), or from another pid namespace (another container), is never judged.
std::optional<std::string> FillLockHolderGone(const FillLockHolder& holder, std::string_view node,
                                              const ProcessIdentity& self,
                                              std::optional<uint64_t> holder_start_ticks_now);

// A lock this process holds (returned by TryAcquire, kept by the filler).
struct FillLock {
  std::string name;
  std::string version;
  std::filesystem::path path;
  FillLockHolder holder;  // ours
};

// The fill locks of one volume as one agent takes them. Blocking file I/O: call it from a
// worker thread. Thread-compatible (const methods may run concurrently).
class FillLocks {
 public:
  // What /proc says about a pid now: ProcessStartTicks, or a fake in tests.
  using StartTicksProbe = std::function<std::optional<uint64_t>(int64_t pid)>;

  // `clock` must outlive this object. `pid` identifies the process in the lock file only
  // (no identity lines: its locks are never judged gone, and it judges no others).
  FillLocks(CacheLayout layout, std::string node_name, const Clock& clock,
            std::chrono::milliseconds ttl, int64_t pid);
  // As `self` (written into its locks), judging other holders with `probe`.
  FillLocks(CacheLayout layout, std::string node_name, const Clock& clock,
            std::chrono::milliseconds ttl, ProcessIdentity self, StartTicksProbe probe);
  // This process (ProcessIdentity::OfThisProcess, ProcessStartTicks).
  FillLocks(CacheLayout layout, std::string node_name, const Clock& clock,
            std::chrono::milliseconds ttl);

  // Takes the lock of name@version if it is free, expired or held by a process that is gone
  // (FillLockHolderGone; then with fencing + 1, and logged), naming `source` in it (empty: no
  // source line). ALREADY_EXISTS naming the holder (node, pid, fencing, expiry) when someone
  // holds it; INVALID_ARGUMENT for a bad name, version, node name or source.
  absl::StatusOr<FillLock> TryAcquire(std::string_view name, std::string_view version,
                                      std::string_view source = {}) const;

  // Extends the lock to now + ttl if the file is still ours (same token and fencing), and
  // updates lock.holder.expires. ABORTED naming the new holder when it is not (lost).
  absl::Status Renew(FillLock& lock) const;

  // Removes the lock file if it is still ours. ABORTED when it is not (it is then left to its
  // holder); OK when there is no file any more.
  absl::Status Release(const FillLock& lock) const;

  // OK if the file still holds our token and fencing and has not expired: call it right
  // before publishing. ABORTED saying why (gone, taken over by whom, expired when).
  absl::Status CheckHeld(const FillLock& lock) const;

  // Who holds name@version (possibly expired). NOT_FOUND when nobody.
  absl::StatusOr<FillLockHolder> ReadHolder(std::string_view name, std::string_view version) const;

  std::filesystem::path LockPath(std::string_view name, std::string_view version) const;

 private:
  CacheLayout layout_;
  std::string node_name_;
  const Clock& clock_;
  std::chrono::milliseconds ttl_;
  ProcessIdentity self_;
  StartTicksProbe probe_;  // null: holders are never judged gone
};

}  // namespace modelcache
