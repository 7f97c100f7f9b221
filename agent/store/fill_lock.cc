#include "agent/store/fill_lock.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "absl/strings/str_replace.h"
#include "agent/store/exclusive_file.h"
#include "agent/store/key_value_text.h"
#include "common/fs.h"
#include "common/log_fields.h"
#include "common/names.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"
#include "spdlog/spdlog.h"

namespace modelcache {
namespace {

// Only a few contenders ever race for one lock; more rounds than this means something is
// rewriting the file in a loop.
constexpr int kMaxAttempts = 8;

// A lock file as read through one descriptor, which stays open so that Renew touches the
// very file whose token it checked.
struct LockFile {
  int fd = -1;
  std::string text;
  struct stat info {};
  std::optional<FillLockHolder> holder;  // nullopt when the text does not parse
  absl::Status parse_error;

  LockFile() = default;
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;
  LockFile(LockFile&& other) noexcept { *this = std::move(other); }
  LockFile& operator=(LockFile&& other) noexcept {
    std::swap(fd, other.fd);
    text = std::move(other.text);
    info = other.info;
    holder = std::move(other.holder);
    parse_error = std::move(other.parse_error);
    return *this;
  }
  ~LockFile() {
    if (fd >= 0) ::close(fd);
  }
};

// The holder's identity lines (optional: older agents neither write nor need them).
void AddIdentity(const FillLockHolder& holder,
                 std::vector<std::pair<std::string, std::string>>& entries) {
  if (!holder.boot_id.empty() && ValidateValue("boot id", holder.boot_id).ok()) {
    entries.emplace_back("boot_id", holder.boot_id);
  }
  if (!holder.pid_namespace.empty() && ValidateValue("pid namespace", holder.pid_namespace).ok()) {
    entries.emplace_back("pid_ns", holder.pid_namespace);
  }
  if (holder.start_ticks != 0) entries.emplace_back("start_ticks", std::to_string(holder.start_ticks));
}

std::string FormatHolder(const FillLockHolder& holder) {
  std::vector<std::pair<std::string, std::string>> entries = {
      {"node", holder.node},
      {"pid", std::to_string(holder.pid)},
      {"token", holder.token},
      {"fencing", std::to_string(holder.fencing)},
      {"ttl_ms", std::to_string(holder.ttl.count())},
  };
  AddIdentity(holder, entries);
  // Optional, and last: older agents ignore keys they do not know.
  if (!holder.source.empty()) entries.emplace_back("source", holder.source);
  return FormatKeyValues(entries);
}

absl::StatusOr<FillLockHolder> ParseHolder(std::string_view text, const struct stat& info,
                                           const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(KeyValues values, ParseKeyValues(text, path));
  FillLockHolder holder;
  ASSIGN_OR_RETURN(holder.node, RequiredValue(values, "node", path));
  ASSIGN_OR_RETURN(holder.pid, RequiredInt(values, "pid", path));
  ASSIGN_OR_RETURN(holder.token, RequiredValue(values, "token", path));
  ASSIGN_OR_RETURN(int64_t fencing, RequiredInt(values, "fencing", path));
  ASSIGN_OR_RETURN(int64_t ttl_ms, RequiredInt(values, "ttl_ms", path));
  if (fencing < 0 || ttl_ms < 0) {
    return absl::DataLossError(fmt::format("{}: negative fencing or ttl_ms", path.string()));
  }
  holder.fencing = static_cast<uint64_t>(fencing);
  holder.ttl = std::chrono::milliseconds(ttl_ms);
  holder.expires = ModifiedTime(info) + holder.ttl;
  if (auto boot_id = values.find("boot_id"); boot_id != values.end()) holder.boot_id = boot_id->second;
  if (auto pid_ns = values.find("pid_ns"); pid_ns != values.end()) holder.pid_namespace = pid_ns->second;
  if (values.count("start_ticks") != 0) {
    ASSIGN_OR_RETURN(int64_t ticks, RequiredInt(values, "start_ticks", path));
    holder.start_ticks = ticks > 0 ? static_cast<uint64_t>(ticks) : 0;
  }
  if (auto source = values.find("source"); source != values.end()) holder.source = source->second;
  return holder;
}

// NOT_FOUND when there is no file at `path`.
absl::StatusOr<LockFile> ReadLockFile(const std::filesystem::path& path) {
  LockFile file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0) return ErrnoStatus(errno, "open", path);
  if (::fstat(file.fd, &file.info) != 0) return ErrnoStatus(errno, "stat", path);
  char buffer[4096];
  while (true) {
    ssize_t got = ::read(file.fd, buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (got == 0) break;
    file.text.append(buffer, static_cast<size_t>(got));
  }
  absl::StatusOr<FillLockHolder> holder = ParseHolder(file.text, file.info, path);
  if (holder.ok()) {
    file.holder = *std::move(holder);
  } else {
    file.parse_error = holder.status();
  }
  return file;
}

std::string FormatTime(Clock::TimePoint time) {
  time_t seconds = std::chrono::system_clock::to_time_t(time);
  struct tm parts;
  gmtime_r(&seconds, &parts);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string Describe(const FillLockHolder& holder) {
  return fmt::format("node {} pid {} (fencing {}, expires {})", holder.node, holder.pid,
                     holder.fencing, FormatTime(holder.expires));
}

// When a lock was not written by us it may still be garbage (another tool, a torn disk);
// it then expires by its mtime and our ttl, so it cannot block the model forever.
Clock::TimePoint ExpiryOf(const LockFile& file, std::chrono::milliseconds fallback_ttl) {
  if (file.holder.has_value()) return file.holder->expires;
  return ModifiedTime(file.info) + fallback_ttl;
}

bool IsOurs(const LockFile& file, const FillLock& lock) {
  return file.holder.has_value() && file.holder->token == lock.holder.token &&
         file.holder->fencing == lock.holder.fencing;
}

std::string CurrentHolderText(const LockFile& file) {
  if (file.holder.has_value()) return Describe(*file.holder);
  return fmt::format("an unreadable lock ({})", std::string(file.parse_error.message()));
}

// Puts a lock we moved aside by mistake back, unless a new lock appeared meanwhile (then the
// moved one has lost anyway). Either way the aside name is removed.
void RestoreMovedLock(const std::filesystem::path& aside, const std::filesystem::path& path) {
  ::link(aside.c_str(), path.c_str());
  ::unlink(aside.c_str());
}

std::filesystem::path BreakPath(const std::filesystem::path& path) {
  std::filesystem::path break_path = path;
  break_path += ".break";
  return break_path;
}

void ReleaseBreak(const std::filesystem::path& path) { ::unlink(BreakPath(path).c_str()); }

// Replaces the expired lock `expired` (as the caller read it) at `path` with `replacement`,
// holding the break file meanwhile. The lock file never disappears on the way, so nobody can
// create a fresh lock in a gap. true: ours is in place. false: the lock changed (released,
// renewed, taken) or a dead breaker's claim was cleared; the caller looks again.
// ALREADY_EXISTS when another contender is mid take-over.
absl::StatusOr<bool> ReplaceExpired(const std::filesystem::path& path, const std::string& node,
                                    int64_t pid, const LockFile& expired,
                                    std::string_view replacement, Clock::TimePoint now,
                                    std::chrono::milliseconds ttl, bool holder_gone) {
  std::filesystem::path break_path = BreakPath(path);
  std::string break_text =
      FormatKeyValues({{"node", node}, {"pid", std::to_string(pid)}, {"token", RandomHexId128()}});
  absl::Status claimed = CreateFileExclusive(break_path, break_text, now);
  if (absl::IsAlreadyExists(claimed)) {
    struct stat info;
    if (::stat(break_path.c_str(), &info) == 0 && ModifiedTime(info) + ttl <= now) {
      // A breaker died mid take-over (a window of milliseconds); its claim expires like a lock.
      std::filesystem::path aside = break_path;
      aside += ".stale-" + RandomHexId128();
      if (::rename(break_path.c_str(), aside.c_str()) == 0) ::unlink(aside.c_str());
      return false;
    }
    absl::StatusOr<std::string> breaker = ReadFileToString(break_path);
    return absl::AlreadyExistsError(fmt::format(
        "fill lock {}: expired, and being taken over by another agent ({})", path.string(),
        breaker.ok() ? absl::StrReplaceAll(*breaker, {{"\n", " "}}) : "done meanwhile"));
  }
  RETURN_IF_ERROR(claimed);
  // With the break file held, only the expired holder itself (renewing late or releasing)
  // can still change `path`: check it is unchanged right before replacing it. A holder that
  // is gone changes nothing, but the lock must still be the one judged.
  absl::StatusOr<LockFile> again = ReadLockFile(path);
  if (!again.ok() || again->text != expired.text ||
      (!holder_gone && ExpiryOf(*again, ttl) > now)) {
    ReleaseBreak(path);
    if (!again.ok() && !absl::IsNotFound(again.status())) return again.status();
    return false;
  }
  absl::Status replaced = ReplaceFile(path, replacement, now);
  ReleaseBreak(path);
  RETURN_IF_ERROR(replaced);
  return true;
}

absl::Status Lost(const FillLock& lock, std::string_view why) {
  return absl::AbortedError(fmt::format("fill lock {} of {}@{} (fencing {}) lost: {}",
                                        lock.path.string(), lock.name, lock.version,
                                        lock.holder.fencing, why));
}

}  // namespace

std::optional<std::string> FillLockHolderGone(const FillLockHolder& holder, std::string_view node,
                                              const ProcessIdentity& self,
                                              std::optional<uint64_t> holder_start_ticks_now) {
  if (holder.node != node || holder.boot_id.empty() || self.boot_id.empty()) return std::nullopt;
  if (holder.boot_id != self.boot_id) {
    return fmt::format("it ran on this node ({}) before the machine rebooted (boot {}, now {})",
                       holder.node, holder.boot_id, self.boot_id);
  }
  if (holder.pid_namespace.empty() || holder.pid_namespace != self.pid_namespace) {
    return std::nullopt;  // another container's pids are not ours to look up
  }
  if (holder.pid == self.pid && holder.start_ticks == self.start_ticks) return std::nullopt;
  if (!holder_start_ticks_now.has_value()) {
    return fmt::format("pid {} on this node ({}) is no longer running", holder.pid, holder.node);
  }
  if (holder.start_ticks != 0 && *holder_start_ticks_now != holder.start_ticks) {
    return fmt::format("pid {} on this node ({}) is now another process (started at tick {}, "
                       "the holder at tick {})",
                       holder.pid, holder.node, *holder_start_ticks_now, holder.start_ticks);
  }
  return std::nullopt;
}

FillLocks::FillLocks(CacheLayout layout, std::string node_name, const Clock& clock,
                     std::chrono::milliseconds ttl, int64_t pid)
    : FillLocks(std::move(layout), std::move(node_name), clock, ttl, ProcessIdentity{.pid = pid},
                nullptr) {}

FillLocks::FillLocks(CacheLayout layout, std::string node_name, const Clock& clock,
                     std::chrono::milliseconds ttl, ProcessIdentity self, StartTicksProbe probe)
    : layout_(std::move(layout)),
      node_name_(std::move(node_name)),
      clock_(clock),
      ttl_(ttl),
      self_(std::move(self)),
      probe_(std::move(probe)) {}

FillLocks::FillLocks(CacheLayout layout, std::string node_name, const Clock& clock,
                     std::chrono::milliseconds ttl)
    : FillLocks(std::move(layout), std::move(node_name), clock, ttl,
                ProcessIdentity::OfThisProcess(), &ProcessStartTicks) {}

std::filesystem::path FillLocks::LockPath(std::string_view name, std::string_view version) const {
  return layout_.LocksDir() / fmt::format("{}@{}.lock", name, version);
}

absl::StatusOr<FillLock> FillLocks::TryAcquire(std::string_view name, std::string_view version,
                                               std::string_view source) const {
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateModelVersion(version));
  RETURN_IF_ERROR(ValidateValue("node name", node_name_));
  if (!source.empty()) RETURN_IF_ERROR(ValidateValue("source", source));
  RETURN_IF_ERROR(CreateDirectories(layout_.LocksDir()));
  FillLock lock;
  lock.name = std::string(name);
  lock.version = std::string(version);
  lock.path = LockPath(name, version);
  lock.holder.node = node_name_;
  lock.holder.pid = self_.pid;
  lock.holder.ttl = ttl_;
  lock.holder.boot_id = self_.boot_id;
  lock.holder.pid_namespace = self_.pid_namespace;
  lock.holder.start_ticks = self_.start_ticks;
  lock.holder.source = std::string(source);

  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Clock::TimePoint now = clock_.Now();
    lock.holder.token = RandomHexId128();
    lock.holder.fencing = 1;
    lock.holder.expires = now + ttl_;
    absl::Status created = CreateFileExclusive(lock.path, FormatHolder(lock.holder), now);
    if (created.ok()) return lock;
    if (!absl::IsAlreadyExists(created)) return created;

    absl::StatusOr<LockFile> current = ReadLockFile(lock.path);
    if (absl::IsNotFound(current.status())) continue;  // released meanwhile
    RETURN_IF_ERROR(current.status());
    std::optional<std::string> gone;
    if (ExpiryOf(*current, ttl_) > now) {
      if (current->holder.has_value() && probe_) {
        gone = FillLockHolderGone(*current->holder, node_name_, self_,
                                  probe_(current->holder->pid));
      }
      if (!gone) {
        return absl::AlreadyExistsError(fmt::format("fill lock {} of {}@{}: held by {}",
                                                    lock.path.string(), name, version,
                                                    CurrentHolderText(*current)));
      }
    }
    // Expired, or its holder is gone: replace it, serialised against other contenders by a
    // break file.
    FillLock candidate = lock;
    candidate.holder.fencing = current->holder.has_value() ? current->holder->fencing + 1 : 1;
    ASSIGN_OR_RETURN(bool replaced,
                     ReplaceExpired(lock.path, node_name_, self_.pid, *current,
                                    FormatHolder(candidate.holder), now, ttl_, gone.has_value()));
    if (replaced && gone) {
      // Without this the restarted agent would wait out the dead holder's ttl.
      spdlog::info("fill lock taken over from a holder that is gone {}",
                   LogFields()
                       .Add("model", name)
                       .Add("version", version)
                       .Add("holder", Describe(*current->holder))
                       .Add("reason", *gone)
                       .Add("fencing", candidate.holder.fencing));
    }
    if (replaced) return candidate;
  }
  return absl::AbortedError(fmt::format("fill lock {}: still contended after {} attempts",
                                        lock.path.string(), kMaxAttempts));
}

absl::Status FillLocks::Renew(FillLock& lock) const {
  absl::StatusOr<LockFile> current = ReadLockFile(lock.path);
  if (absl::IsNotFound(current.status())) return Lost(lock, "the lock file is gone");
  RETURN_IF_ERROR(current.status());
  if (!IsOurs(*current, lock)) {
    return Lost(lock, fmt::format("now held by {}", CurrentHolderText(*current)));
  }
  Clock::TimePoint now = clock_.Now();
  // Touching through the descriptor we checked: if a take-over moved this file aside, we
  // extend a dead file, never the new holder's (and CheckHeld will then say so).
  RETURN_IF_ERROR(SetFileTimes(current->fd, now, lock.path));
  lock.holder.expires = now + lock.holder.ttl;
  return absl::OkStatus();
}

absl::Status FillLocks::Release(const FillLock& lock) const {
  absl::StatusOr<LockFile> current = ReadLockFile(lock.path);
  if (absl::IsNotFound(current.status())) return absl::OkStatus();
  RETURN_IF_ERROR(current.status());
  if (!IsOurs(*current, lock)) {
    return Lost(lock, fmt::format("now held by {}", CurrentHolderText(*current)));
  }
  // unlink(path) could remove a lock that replaced ours after the check; removing what we
  // moved aside, after checking it, cannot.
  std::filesystem::path aside = lock.path;
  aside += ".released-" + RandomHexId128();
  if (::rename(lock.path.c_str(), aside.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "move aside", lock.path);
  }
  absl::StatusOr<LockFile> moved = ReadLockFile(aside);
  if (!moved.ok() || !IsOurs(*moved, lock)) {
    RestoreMovedLock(aside, lock.path);
    return Lost(lock, "taken over while releasing");
  }
  if (::unlink(aside.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "unlink", aside);
  return absl::OkStatus();
}

absl::Status FillLocks::CheckHeld(const FillLock& lock) const {
  absl::StatusOr<LockFile> current = ReadLockFile(lock.path);
  if (absl::IsNotFound(current.status())) return Lost(lock, "the lock file is gone");
  RETURN_IF_ERROR(current.status());
  if (!IsOurs(*current, lock)) {
    return Lost(lock, fmt::format("now held by {}", CurrentHolderText(*current)));
  }
  Clock::TimePoint expires = current->holder->expires;
  if (expires <= clock_.Now()) {
    return Lost(lock, fmt::format("expired at {}", FormatTime(expires)));
  }
  return absl::OkStatus();
}

absl::StatusOr<FillLockHolder> FillLocks::ReadHolder(std::string_view name,
                                                     std::string_view version) const {
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateModelVersion(version));
  ASSIGN_OR_RETURN(LockFile file, ReadLockFile(LockPath(name, version)));
  if (!file.holder.has_value()) return file.parse_error;
  return *std::move(file.holder);
}

}  // namespace modelcache
