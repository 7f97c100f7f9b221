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
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/store/layout.h"
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
  // The source URI the holder fills from (the "source" line, written since this field
  // exists; empty in older agents' lock files): a waiter that asked for another source is
  // told at once instead of waiting for a model it will not be served.
  std::string source;
};

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
  // `clock` must outlive this object. `pid` identifies the process in the lock file only.
  FillLocks(CacheLayout layout, std::string node_name, const Clock& clock,
            std::chrono::milliseconds ttl, int64_t pid);
  // Same, with this process's pid.
  FillLocks(CacheLayout layout, std::string node_name, const Clock& clock,
            std::chrono::milliseconds ttl);

  // Takes the lock of name@version if it is free or expired (then with fencing + 1), naming
  // `source` in it (empty: no source line). ALREADY_EXISTS naming the holder (node, pid,
  // fencing, expiry) when someone holds it; INVALID_ARGUMENT for a bad name, version, node
  // name or source.
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
  int64_t pid_;
};

}  // namespace modelcache
