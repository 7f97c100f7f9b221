#include "common/metrics_http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>

#include "agent/metrics.h"
#include "tests/testing/http_get.h"

namespace modelcache {
namespace {

using ::testing::HasSubstr;
using testing::HttpGet;
using testing::HttpResponse;

TEST(MetricsHttpServer, BeforeScrapeRefreshesGaugesForEachScrape) {
  prometheus::Registry registry;
  prometheus::Gauge& gauge =
      prometheus::BuildGauge().Name("modelcache_test_scrapes").Help("t").Register(registry).Add({});
  std::atomic<int> scrapes{0};
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start(MetricsHttpOptions{.address = "127.0.0.1:0",
                                                  .ready = nullptr,
                                                  .before_scrape = [&] { gauge.Set(++scrapes); }},
                               registry);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string base = "http://127.0.0.1:" + std::to_string((*server)->Port());
  EXPECT_THAT(HttpGet(base + "/metrics").body, HasSubstr("modelcache_test_scrapes 1"));
  EXPECT_THAT(HttpGet(base + "/metrics").body, HasSubstr("modelcache_test_scrapes 2"));
  // Probes do not scrape.
  EXPECT_EQ(HttpGet(base + "/healthz").status, 200);
  EXPECT_EQ(scrapes.load(), 2);
}

TEST(MetricsHttpServer, WithoutAReadinessCheckItIsReady) {
  prometheus::Registry registry;
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start(MetricsHttpOptions{.address = "127.0.0.1:0"}, registry);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string base = "http://127.0.0.1:" + std::to_string((*server)->Port());
  EXPECT_EQ(HttpGet(base + "/readyz").status, 200);
  EXPECT_EQ(HttpGet(base + "/nothing-here").status, 404);
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

  EXPECT_EQ(HttpGet(base + "/healthz").status, 200);
  EXPECT_EQ(HttpGet(base + "/readyz").status, 503);
  ready = true;
  EXPECT_EQ(HttpGet(base + "/readyz").status, 200);
  HttpResponse scrape = HttpGet(base + "/metrics");
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
