// ModelCacheOps (what the coordinator client reports and runs) over a real ModelCache filled
// from local files: pods' leases show up in the usage report, a purge command for a leased
// model is refused, and each policy from the coordinator is saved for the next start.
#include "agent/local_cache_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>

#include "agent/fill/event_loop.h"
#include "agent/saved_policy.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/random_model.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

class LocalCacheOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.Start();
    ModelCacheOptions options;
    options.cache_root = cache_dir_.Path();
    options.sources.file_roots = std::vector<fs::path>{source_dir_.Path()};  // fileSources: the test's models
    absl::StatusOr<std::unique_ptr<ModelCache>> cache =
        ModelCache::Open(loop_, system_clock_, options);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    ops_ = std::make_unique<ModelCacheOps>(
        *cache_, policy_,
        CacheOpsOptions{.cache_root = cache_dir_.Path(),
                        .caching_enabled = true,
                        .on_change = nullptr,
                        .leases = &leases_,
                        .policy_file = state_dir_.Path() / kSavedPolicyFileName});
  }
  void TearDown() override {
    ops_.reset();
    cache_.reset();
    loop_.Stop();
  }

  // Fills name@version from local files and returns its size.
  uint64_t Fill(const std::string& name, const std::string& version) {
    fs::path source = source_dir_.Path() / (name + "-" + version);
    uint64_t bytes = 0;
    for (const v1::ManifestFile& file :
         testing::WriteRandomModel(source, {{"a.bin", 70000}, {"b/c.bin", 5000}})) {
      bytes += file.size();
    }
    v1::EnsureRequest request;
    request.set_name(name);
    request.set_version(version);
    request.set_source("file://" + source.string());
    auto done = std::make_shared<std::promise<absl::Status>>();
    cache_->Ensure(request, [](const v1::EnsureProgress&) {},
                   [done](absl::StatusOr<v1::EnsureProgress> result) {
                     done->set_value(result.status());
                   });
    std::future<absl::Status> finished = done->get_future();
    EXPECT_EQ(finished.wait_for(60s), std::future_status::ready);
    absl::Status status = finished.get();
    EXPECT_TRUE(status.ok()) << status;
    return bytes;
  }

  uint32_t ReportedLeases(const std::string& name, const std::string& version) {
    for (const v1::ModelUsage& usage : ops_->Usage()) {
      if (usage.name() == name && usage.version() == version) return usage.live_leases();
    }
    ADD_FAILURE() << name << "@" << version << " not reported";
    return 0;
  }

  testing::TempDir cache_dir_;
  testing::TempDir source_dir_;
  testing::TempDir state_dir_;
  SystemClock system_clock_;
  testing::FakeClock lease_clock_;
  LeaseTable leases_{lease_clock_, 60s};
  CachingPolicyHolder policy_{/*allow_without_policy=*/true};
  EventLoop loop_;
  std::unique_ptr<ModelCache> cache_;
  std::unique_ptr<ModelCacheOps> ops_;
};

TEST_F(LocalCacheOpsTest, UsageReportsEachModelsLiveLeases) {
  Fill("llama", "1");
  Fill("bert", "2");
  leases_.Hold("llama", "1", "pod-a");
  leases_.Hold("llama", "1", "pod-b");
  leases_.Hold("absent", "1", "pod-c");  // leased but not cached: nothing to report
  EXPECT_EQ(ReportedLeases("llama", "1"), 2u);
  EXPECT_EQ(ReportedLeases("bert", "2"), 0u);
  EXPECT_EQ(ops_->Usage().size(), 2u);
  lease_clock_.Advance(61s);
  EXPECT_EQ(ReportedLeases("llama", "1"), 0u);
}

TEST_F(LocalCacheOpsTest, PurgeOfALeasedModelIsRefusedUntilTheLeaseEnds) {
  const uint64_t bytes = Fill("llama", "1");
  leases_.Hold("llama", "1", "pod-a");
  absl::StatusOr<uint64_t> refused = ops_->Purge("llama", "1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("llama@1"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("in use"));
  EXPECT_TRUE(fs::exists(cache_dir_.Path() / "models" / "llama" / "1" / "a.bin"));
  EXPECT_TRUE(cache_->Stat("llama", "1").ok());

  ASSERT_TRUE(leases_.Release("llama", "1", "pod-a"));
  absl::StatusOr<uint64_t> freed = ops_->Purge("llama", "1");
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, bytes);
  EXPECT_FALSE(fs::exists(cache_dir_.Path() / "models" / "llama" / "1"));
}

TEST_F(LocalCacheOpsTest, AppliedPolicyIsSavedForTheNextStart) {
  v1::CachingPolicy policy;
  policy.set_default_enabled(false);
  v1::CachingRule* rule = policy.add_rules();
  rule->set_name("llama");
  rule->set_enabled(true);
  ops_->ApplyCachingPolicy(policy);
  EXPECT_FALSE(policy_.Allowed("bert", "1"));

  absl::StatusOr<std::optional<v1::CachingPolicy>> saved =
      LoadSavedPolicy(state_dir_.Path() / kSavedPolicyFileName);
  ASSERT_TRUE(saved.ok()) << saved.status();
  ASSERT_TRUE(saved->has_value());
  EXPECT_FALSE((*saved)->default_enabled());
  ASSERT_EQ((*saved)->rules_size(), 1);
  EXPECT_EQ((*saved)->rules(0).name(), "llama");
}

}  // namespace
}  // namespace modelcache
