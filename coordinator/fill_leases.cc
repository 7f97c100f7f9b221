#include "coordinator/fill_leases.h"

#include <algorithm>
#include <chrono>

#include "common/names.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

constexpr uint32_t kDefaultTtlMs = 30'000;
constexpr uint32_t kMaxWaitMs = 30'000;
// How often a waiting Watch looks at `cancelled`.
constexpr std::chrono::milliseconds kCancelCheck{250};
// Released leases are kept this long so that late watchers still learn the outcome.
constexpr std::chrono::minutes kForgetAfter{10};

absl::Status ValidateKey(std::string_view volume_id, std::string_view name,
                         std::string_view version) {
  if (volume_id.empty()) return absl::InvalidArgumentError("fill lease: volume_id is empty");
  RETURN_IF_ERROR(ValidateModelName(name));
  return ValidateModelVersion(version);
}

absl::Status ValidateRequest(const v1::FillLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateKey(request.volume_id(), request.name(), request.version()));
  if (request.holder().empty()) return absl::InvalidArgumentError("fill lease: holder is empty");
  return absl::OkStatus();
}

const char* StateName(v1::FillLease::State state) {
  return v1::FillLease::State_Name(state).c_str();
}

}  // namespace

FillLeaseTable::FillLeaseTable(const Clock& clock) : clock_(clock) {}

v1::FillLease FillLeaseTable::Snapshot(const Entry& entry, Clock::TimePoint now) const {
  v1::FillLease lease = entry.lease;
  if (lease.state() == v1::FillLease::HELD && FromUnixMillis(lease.expires_unix_ms()) <= now) {
    lease.set_state(v1::FillLease::EXPIRED);
  }
  return lease;
}

void FillLeaseTable::Changed(Entry& entry) {
  entry.lease.set_change(next_change_++);
  entry.updated = clock_.Now();
  changed_.notify_all();
}

void FillLeaseTable::ForgetOld(Clock::TimePoint now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const v1::FillLease& lease = it->second.lease;
    bool idle = lease.state() != v1::FillLease::HELD ||
                FromUnixMillis(lease.expires_unix_ms()) <= now;
    if (idle && now - it->second.updated > kForgetAfter) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<v1::FillLease> FillLeaseTable::Acquire(const v1::FillLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateRequest(request));
  std::lock_guard lock(mutex_);
  Clock::TimePoint now = clock_.Now();
  ForgetOld(now);
  Entry& entry = entries_[Key(request.volume_id(), request.name(), request.version())];
  v1::FillLease& lease = entry.lease;
  v1::FillLease current = Snapshot(entry, now);
  uint32_t ttl_ms = request.ttl_ms() == 0 ? kDefaultTtlMs : request.ttl_ms();
  if (current.state() == v1::FillLease::HELD && current.holder() != request.holder()) {
    current.set_granted(false);
    return current;
  }
  if (current.state() == v1::FillLease::FAILED && request.waited_fencing() != 0 &&
      current.fencing() == request.waited_fencing()) {
    // The caller waited on this very fill: it answers with its error, not a new attempt.
    current.set_granted(false);
    return current;
  }
  if (current.state() != v1::FillLease::HELD) {
    // Free, published or expired: a new grant, with a new fencing number.
    lease.set_volume_id(request.volume_id());
    lease.set_name(request.name());
    lease.set_version(request.version());
    lease.set_holder(request.holder());
    lease.set_fencing(next_fencing_++);
    lease.set_bytes_done(0);
    lease.set_bytes_total(0);
    // A failed fill's error stays with its fencing number; a new attempt starts clean.
    lease.clear_error_code();
    lease.clear_error_message();
  }
  lease.set_state(v1::FillLease::HELD);
  lease.set_expires_unix_ms(ToUnixMillis(now + std::chrono::milliseconds(ttl_ms)));
  Changed(entry);
  v1::FillLease granted = lease;
  granted.set_granted(true);
  return granted;
}

absl::StatusOr<v1::FillLease> FillLeaseTable::Renew(const v1::FillLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateRequest(request));
  std::lock_guard lock(mutex_);
  Clock::TimePoint now = clock_.Now();
  auto it = entries_.find(Key(request.volume_id(), request.name(), request.version()));
  if (it == entries_.end() || it->second.lease.state() != v1::FillLease::HELD ||
      it->second.lease.holder() != request.holder() ||
      it->second.lease.fencing() != request.fencing()) {
    std::string now_text =
        it == entries_.end()
            ? std::string("unknown")
            : fmt::format("{} by {} (fencing {})", StateName(it->second.lease.state()),
                          it->second.lease.holder(), it->second.lease.fencing());
    return absl::AbortedError(fmt::format("fill lease {}@{} on volume {} (fencing {}) lost: now {}",
                                          request.name(), request.version(),
                                          request.volume_id(), request.fencing(), now_text));
  }
  v1::FillLease& lease = it->second.lease;
  uint32_t ttl_ms = request.ttl_ms() == 0 ? kDefaultTtlMs : request.ttl_ms();
  lease.set_expires_unix_ms(ToUnixMillis(now + std::chrono::milliseconds(ttl_ms)));
  lease.set_bytes_done(request.bytes_done());
  lease.set_bytes_total(request.bytes_total());
  Changed(it->second);
  v1::FillLease renewed = lease;
  renewed.set_granted(true);
  return renewed;
}

absl::StatusOr<v1::FillLease> FillLeaseTable::Release(const v1::FillLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateRequest(request));
  std::lock_guard lock(mutex_);
  auto it = entries_.find(Key(request.volume_id(), request.name(), request.version()));
  if (it == entries_.end() || it->second.lease.state() != v1::FillLease::HELD ||
      it->second.lease.holder() != request.holder() ||
      it->second.lease.fencing() != request.fencing()) {
    return absl::AbortedError(fmt::format(
        "fill lease {}@{} on volume {} (fencing {}): not held by {}", request.name(),
        request.version(), request.volume_id(), request.fencing(), request.holder()));
  }
  v1::FillLease& lease = it->second.lease;
  if (request.published()) {
    lease.set_state(v1::FillLease::PUBLISHED);
  } else if (request.error_code() != 0) {
    // The waiters on this fencing number answer with the filler's error.
    lease.set_state(v1::FillLease::FAILED);
    lease.set_error_code(request.error_code());
    lease.set_error_message(request.error_message());
  } else {
    lease.set_state(v1::FillLease::FREE);
  }
  lease.set_expires_unix_ms(0);
  Changed(it->second);
  return lease;
}

absl::StatusOr<v1::FillLease> FillLeaseTable::Watch(const v1::WatchFillLeaseRequest& request,
                                                    const std::function<bool()>& cancelled) {
  RETURN_IF_ERROR(ValidateKey(request.volume_id(), request.name(), request.version()));
  Key key(request.volume_id(), request.name(), request.version());
  auto wait_end = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(std::min(request.wait_ms(), kMaxWaitMs));
  std::unique_lock lock(mutex_);
  while (true) {
    Clock::TimePoint now = clock_.Now();
    auto it = entries_.find(key);
    v1::FillLease lease;
    if (it == entries_.end()) {
      lease.set_volume_id(request.volume_id());
      lease.set_name(request.name());
      lease.set_version(request.version());
      lease.set_state(v1::FillLease::FREE);
    } else {
      lease = Snapshot(it->second, now);
    }
    // An expired lease is news too: waiters take it over.
    if (lease.change() > request.after_change() || lease.state() == v1::FillLease::EXPIRED ||
        shutting_down_ || std::chrono::steady_clock::now() >= wait_end ||
        (cancelled && cancelled())) {
      return lease;
    }
    auto until = std::min(wait_end, std::chrono::steady_clock::now() + kCancelCheck);
    if (lease.state() == v1::FillLease::HELD) {
      auto to_expiry = FromUnixMillis(lease.expires_unix_ms()) - now;
      until = std::min(until, std::chrono::steady_clock::now() +
                                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      to_expiry + std::chrono::milliseconds(1)));
    }
    changed_.wait_until(lock, until);
  }
}

void FillLeaseTable::Shutdown() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
  changed_.notify_all();
}

}  // namespace modelcache
