#include "agent/pod_leases/pod_lease_table.h"

#include <algorithm>

namespace modelcache {

PodLeaseTable::PodLeaseTable(const Clock& clock, std::chrono::seconds default_ttl)
    : clock_(clock), default_ttl_(default_ttl.count() > 0 ? default_ttl : std::chrono::minutes(10)) {}

Clock::TimePoint PodLeaseTable::Hold(std::string_view name, std::string_view version,
                                  std::string_view holder, std::chrono::seconds ttl) {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  const Clock::TimePoint expires = clock_.Now() + (ttl.count() > 0 ? ttl : default_ttl_);
  expiry_[LeaseKey(name, version, holder)] = expires;
  held_at_[ModelKey(name, version)] = clock_.Now();
  return expires;
}

void PodLeaseTable::HoldUntilReleased(std::string_view name, std::string_view version,
                                   std::string_view holder) {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  expiry_[LeaseKey(name, version, holder)] = Clock::TimePoint::max();
  held_at_[ModelKey(name, version)] = clock_.Now();
}

bool PodLeaseTable::Release(std::string_view name, std::string_view version,
                         std::string_view holder) {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  if (expiry_.erase(LeaseKey(name, version, holder)) == 0) return false;
  ended_[ModelKey(name, version)] = clock_.Now();
  return true;
}

bool PodLeaseTable::is_leased(std::string_view name, std::string_view version) const {
  return LiveLeases(name, version) > 0;
}

uint32_t PodLeaseTable::LiveLeases(std::string_view name, std::string_view version) const {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  uint32_t count = 0;
  // Keys sort by name, version, holder: the model's leases are one contiguous run.
  for (auto it = expiry_.lower_bound(LeaseKey(name, version, ""));
       it != expiry_.end() && std::get<0>(it->first) == name && std::get<1>(it->first) == version;
       ++it) {
    ++count;
  }
  return count;
}

std::map<PodLeaseTable::ModelKey, uint32_t> PodLeaseTable::LiveByModel() const {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  std::map<ModelKey, uint32_t> counts;
  for (const auto& [key, expires] : expiry_) ++counts[{std::get<0>(key), std::get<1>(key)}];
  return counts;
}

std::map<PodLeaseTable::ModelKey, std::vector<std::string>> PodLeaseTable::HoldersByModel() const {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  std::map<ModelKey, std::vector<std::string>> holders;
  // Keys sort by name, version, holder: each model's holders arrive sorted.
  for (const auto& [key, expires] : expiry_) holders[{std::get<0>(key), std::get<1>(key)}].push_back(std::get<2>(key));
  return holders;
}

std::map<PodLeaseTable::ModelKey, Clock::TimePoint> PodLeaseTable::LastLeasedByModel() const {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  std::map<ModelKey, Clock::TimePoint> last = ended_;
  for (const auto& [key, expires] : expiry_) {
    const ModelKey model(std::get<0>(key), std::get<1>(key));
    auto held = held_at_.find(model);
    if (held != held_at_.end()) last[model] = held->second;
  }
  return last;
}

size_t PodLeaseTable::LiveCount() const {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  return expiry_.size();
}

void PodLeaseTable::DropExpiredLocked() const {
  const Clock::TimePoint now = clock_.Now();
  for (auto it = expiry_.begin(); it != expiry_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    Clock::TimePoint& ended = ended_[{std::get<0>(it->first), std::get<1>(it->first)}];
    ended = std::max(ended, it->second);
    it = expiry_.erase(it);
  }
}

}  // namespace modelcache
