#include "common/metrics_http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>

#include "tests/testing/http_get.h"

namespace modelcache {
namespace {

using ::testing::HasSubstr;
using testing::HttpGet;

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

}  // namespace
}  // namespace modelcache
