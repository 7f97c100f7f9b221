#pragma once
// Accepted review answers, kept for a short time so that each RPC does not cost an API call.
// Only what was accepted is kept: a refusal or a failed review is asked again next time, so a
// new RoleBinding works at once and an API server that comes back is used at once. A revoked
// binding or token keeps working for at most `ttl`. Bounded: at `capacity`, expired entries go
// first, then the entry closest to expiry. Time comes from the injected clock. Thread-safe.
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "common/clock.h"

namespace modelcache::kube_auth {

template <typename Value>
class ReviewCache {
 public:
  ReviewCache(const Clock& clock, std::chrono::seconds ttl, size_t capacity = 4096)
      : clock_(clock), ttl_(ttl), capacity_(capacity) {}

  // The value kept under `key`, unless it expired (then it is dropped).
  std::optional<Value> Find(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto found = entries_.find(key);
    if (found == entries_.end()) return std::nullopt;
    if (clock_.Now() >= found->second.expires) {
      entries_.erase(found);
      return std::nullopt;
    }
    return found->second.value;
  }

  // Keeps `value` for the TTL from now (nothing when the TTL is 0).
  void Put(const std::string& key, Value value) {
    if (ttl_.count() <= 0 || capacity_ == 0) return;
    std::lock_guard lock(mutex_);
    const Clock::TimePoint now = clock_.Now();
    if (entries_.size() >= capacity_ && !entries_.contains(key)) Evict(now);
    entries_[key] = Entry{std::move(value), now + ttl_};
  }

  size_t Size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  struct Entry {
    Value value;
    Clock::TimePoint expires;
  };

  void Evict(Clock::TimePoint now) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.expires <= now ? entries_.erase(it) : std::next(it);
    }
    if (entries_.size() < capacity_) return;
    auto soonest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.expires < soonest->second.expires) soonest = it;
    }
    entries_.erase(soonest);
  }

  const Clock& clock_;
  const std::chrono::seconds ttl_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;  // guarded by mutex_
};

}  // namespace modelcache::kube_auth
