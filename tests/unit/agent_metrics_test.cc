#include "agent/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <curl/curl.h>
#include <prometheus/text_serializer.h>

namespace modelcache {
namespace {

using ::testing::HasSubstr;

struct HttpAnswer {
  long status = 0;
  std::string body;
};

HttpAnswer Get(const std::string& url) {
  HttpAnswer answer;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer.body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION,
                   +[](char* data, size_t size, size_t count, void* body) {
                     static_cast<std::string*>(body)->append(data, size * count);
                     return size * count;
                   });
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
  }
  curl_easy_cleanup(curl);
  return answer;
}

TEST(CacheSnapshot, WithoutQuotaTheDiskIsTheLimit) {
  AgentMetrics::CacheSnapshot snapshot = MakeCacheSnapshot(3, 700, 10'000, 4'000, 0);
  EXPECT_EQ(snapshot.models, 3u);
  EXPECT_EQ(snapshot.used_bytes, 700u);
  EXPECT_EQ(snapshot.capacity_bytes, 10'000u);
  EXPECT_EQ(snapshot.free_bytes, 4'000u);
}

TEST(CacheSnapshot, ASmallerQuotaLimitsCapacityAndFreeBytes) {
  AgentMetrics::CacheSnapshot snapshot = MakeCacheSnapshot(1, 700, 10'000, 4'000, 1'000);
  EXPECT_EQ(snapshot.capacity_bytes, 1'000u);
  EXPECT_EQ(snapshot.free_bytes, 300u);
}

TEST(CacheSnapshot, AnOverfullQuotaLeavesNothingFree) {
  EXPECT_EQ(MakeCacheSnapshot(1, 2'000, 10'000, 4'000, 1'000).free_bytes, 0u);
}

TEST(AgentMetrics, ExportsCountersAndGaugesByName) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  metrics.CountEnsure(EnsureResult::kHit);
  metrics.CountEnsure(EnsureResult::kHit);
  metrics.CountEnsure(EnsureResult::kError);
  metrics.SetFillsInProgress(2);
  metrics.SetCache(MakeCacheSnapshot(5, 1234, 10'000, 4'000, 0));
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_requests_total{result=\"hit\"} 2"));
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_requests_total{result=\"miss\"} 0"));
  EXPECT_THAT(text, HasSubstr("modelcache_ensure_requests_total{result=\"error\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_fills_in_progress 2"));
  EXPECT_THAT(text, HasSubstr("modelcache_cache_models 5"));
  EXPECT_THAT(text, HasSubstr("modelcache_cache_used_bytes 1234"));
  EXPECT_THAT(text, HasSubstr("modelcache_cache_capacity_bytes 10000"));
  EXPECT_THAT(text, HasSubstr("modelcache_cache_free_bytes 4000"));
}

TEST(MetricsHttpServer, ServesMetricsAndProbesOnAFreePort) {
  prometheus::Registry registry;
  AgentMetrics metrics(registry);
  std::atomic<bool> ready{false};
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("127.0.0.1:0", registry, [&] { return ready.load(); });
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->Port(), 0);
  std::string base = "http://127.0.0.1:" + std::to_string((*server)->Port());
  metrics.CountEnsure(EnsureResult::kMiss);

  EXPECT_EQ(Get(base + "/healthz").status, 200);
  EXPECT_EQ(Get(base + "/readyz").status, 503);
  ready = true;
  EXPECT_EQ(Get(base + "/readyz").status, 200);
  HttpAnswer scrape = Get(base + "/metrics");
  EXPECT_EQ(scrape.status, 200);
  EXPECT_THAT(scrape.body, HasSubstr("modelcache_ensure_requests_total{result=\"miss\"} 1"));
}

TEST(MetricsHttpServer, ReportsAnAddressItCannotBind) {
  prometheus::Registry registry;
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("192.0.2.1:1", registry, [] { return true; });
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace modelcache
