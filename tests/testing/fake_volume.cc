#include "tests/testing/fake_volume.h"

#include <chrono>

#include "common/clock.h"

namespace modelcache::testing {

void FakeVolume::Put(const std::string& name, const std::string& version, uint64_t bytes,
                     int64_t last_access_ms, uint32_t leases) {
  if (last_access_ms < 0) last_access_ms = ToUnixMillis(std::chrono::system_clock::now());
  std::lock_guard lock(mutex_);
  v1::ModelUsage& usage = models_[{name, version}];
  usage.set_name(name);
  usage.set_version(version);
  usage.set_size_bytes(bytes);
  usage.set_last_access_unix_ms(last_access_ms);
  usage.set_live_leases(leases);
  usage.set_state(v1::ModelUsage::READY);
}

bool FakeVolume::Has(const std::string& name, const std::string& version) {
  std::lock_guard lock(mutex_);
  return models_.count({name, version}) > 0;
}

int FakeVolume::Purges(const std::string& name, const std::string& version) {
  std::lock_guard lock(mutex_);
  return purges_[{name, version}];
}

std::vector<std::string> FakeVolume::Prefetches() {
  std::lock_guard lock(mutex_);
  return prefetches_;
}

std::optional<v1::CachingPolicy> FakeVolume::Policy() {
  std::lock_guard lock(mutex_);
  return policy_;
}

std::vector<v1::ModelUsage> FakeVolume::Usage() {
  std::lock_guard lock(mutex_);
  std::vector<v1::ModelUsage> usage;
  for (const auto& [key, model] : models_) usage.push_back(model);
  return usage;
}

absl::StatusOr<uint64_t> FakeVolume::Purge(const std::string& name, const std::string& version) {
  std::lock_guard lock(mutex_);
  ++purges_[{name, version}];
  auto found = models_.find({name, version});
  if (found == models_.end()) return 0;
  if (found->second.live_leases() > 0) return absl::FailedPreconditionError("in use");
  uint64_t bytes = found->second.size_bytes();
  models_.erase(found);
  return bytes;
}

absl::Status FakeVolume::Prefetch(const std::string& name, const std::string& version,
                                  const std::string& source) {
  {
    std::lock_guard lock(mutex_);
    prefetches_.push_back(name + "@" + version + " " + source);
  }
  Put(name, version, 42);
  return absl::OkStatus();
}

void FakeVolume::ApplyCachingPolicy(const v1::CachingPolicy& policy) {
  std::lock_guard lock(mutex_);
  policy_ = policy;
}

}  // namespace modelcache::testing
