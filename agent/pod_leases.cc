#include "agent/pod_leases.h"

namespace modelcache {

PodLeaseTable::PodLeaseTable(const Clock& clock, std::chrono::seconds default_ttl)
    : clock_(clock), default_ttl_(default_ttl.count() > 0 ? default_ttl : std::chrono::minutes(10)) {}

Clock::TimePoint PodLeaseTable::Hold(std::string_view name, std::string_view version,
                                  std::string_view holder, std::chrono::seconds ttl) {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  const Clock::TimePoint expires = clock_.Now() + (ttl.count() > 0 ? ttl : default_ttl_);
  expiry_[LeaseKey(name, version, holder)] = expires;
  return expires;
}

bool PodLeaseTable::Release(std::string_view name, std::string_view version,
                         std::string_view holder) {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  return expiry_.erase(LeaseKey(name, version, holder)) > 0;
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

size_t PodLeaseTable::LiveCount() const {
  std::lock_guard lock(mutex_);
  DropExpiredLocked();
  return expiry_.size();
}

void PodLeaseTable::DropExpiredLocked() const {
  const Clock::TimePoint now = clock_.Now();
  for (auto it = expiry_.begin(); it != expiry_.end();) {
    it = it->second <= now ? expiry_.erase(it) : std::next(it);
  }
}

}  // namespace modelcache
