// The coordinator's metrics and probes, in process: a CoordinatorServer on 127.0.0.1 with its
// metrics port, a simulated agent (the agent's own CoordinatorClient over an in-memory
// volume) and admin calls through the gRPC stub.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <mutex>
#include <optional>
#include <regex>

#include "agent/coordination/coordinator_client.h"
#include "coordinator/db/sqlite.h"
#include "coordinator/metrics.h"
#include "coordinator/server.h"
#include "modelcache/v1/coordinator.grpc.pb.h"
#include "tests/testing/http_get.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"
#include "tests/testing/fake_volume.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::HttpGet;
using testing::PollUntil;

constexpr auto kDeadline = 15s;

using testing::FakeVolume;

// The value of the first sample line that starts with `series` ("name{labels}" or "name").
std::optional<double> SampleValue(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return std::nullopt;
}

class CoordinatorMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorConfig config;
    config.listen = "127.0.0.1:0";
    config.database = dir_.Join("coordinator.db");
    config.metrics_address = "127.0.0.1:0";
    config.default_caching_enabled = true;
    config.storage.check_unused_every = std::chrono::hours(1);  // passes only when asked
    absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
        CoordinatorServer::Start(config, clock_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->MetricsPort(), 0);
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->MetricsPort()) + path;
  }
  std::string Metrics() const { return HttpGet(Url("/metrics")).body; }

  // Polls the scrape until `series` has the value `want` (the database gauges are read at
  // most once a second).
  bool WaitFor(const std::string& series, double want) {
    return PollUntil(
        [&] {
          std::optional<double> value = SampleValue(Metrics(), series);
          return value && *value == want;
        },
        kDeadline, 100ms);
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::unique_ptr<CoordinatorServer> server_;
};

TEST_F(CoordinatorMetricsTest, HealthIsAlwaysOkAndReadinessEndsWithShutdown) {
  EXPECT_EQ(HttpGet(Url("/healthz")).status, 200);
  EXPECT_EQ(HttpGet(Url("/readyz")).status, 200);
  server_->Shutdown();
  // The metrics port outlives the gRPC server, so a probe can tell that it stopped serving.
  EXPECT_EQ(HttpGet(Url("/readyz")).status, 503);
  EXPECT_EQ(HttpGet(Url("/healthz")).status, 200);
}

TEST_F(CoordinatorMetricsTest, APolicyPassIsTimedAndStamped) {
  std::string before = Metrics();
  EXPECT_EQ(SampleValue(before, "modelcache_coordinator_policy_loop_duration_seconds_count"), 0);
  EXPECT_EQ(SampleValue(before, "modelcache_coordinator_policy_loop_last_run_timestamp_seconds"),
            0);
  const double started = static_cast<double>(ToUnixMillis(clock_.Now()) / 1000);
  ASSERT_TRUE(server_->RunPolicyOnce().ok());
  std::string after = Metrics();
  EXPECT_EQ(SampleValue(after, "modelcache_coordinator_policy_loop_duration_seconds_count"), 1);
  std::optional<double> stamp =
      SampleValue(after, "modelcache_coordinator_policy_loop_last_run_timestamp_seconds");
  ASSERT_TRUE(stamp.has_value()) << after;
  EXPECT_GE(*stamp, started);
  EXPECT_LE(*stamp, started + 60);
}

TEST_F(CoordinatorMetricsTest, ReportsAndAManualPurgeMoveTheGaugesAndCounters) {
  EXPECT_TRUE(WaitFor("modelcache_coordinator_volumes", 0));
  FakeVolume volume;
  volume.Put("llama", "v1", 1000);
  volume.Put("llama", "v2", 2000);
  std::mutex purged_mutex;
  std::vector<std::pair<std::string, uint64_t>> purged;
  CoordinatorClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(server_->Port());
  options.node_name = "node-a";
  options.volume_id = "vol-a";
  options.report_interval = 100ms;
  options.on_purged = [&](std::string_view reason, uint64_t bytes) {
    std::lock_guard lock(purged_mutex);
    purged.emplace_back(std::string(reason), bytes);
  };
  CoordinatorClient agent(options, volume);
  agent.Start();

  EXPECT_TRUE(WaitFor("modelcache_coordinator_volumes", 1)) << Metrics();
  EXPECT_TRUE(WaitFor("modelcache_coordinator_cached_models{volume=\"vol-a\"}", 2)) << Metrics();
  EXPECT_GT(agent.LastReportUnixSeconds(), 0);
  EXPECT_EQ(
      SampleValue(Metrics(), "modelcache_coordinator_purge_decisions_total{reason=\"manual\"}"), 0);

  auto channel = grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials());
  auto stub = v1::Coordinator::NewStub(channel);
  grpc::ClientContext context;
  v1::PurgeRequest request;
  request.set_name("llama");
  request.set_version("v1");
  v1::PurgeResponse response;
  grpc::Status status = stub->Purge(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.actions_size(), 1);

  EXPECT_TRUE(WaitFor("modelcache_coordinator_purge_decisions_total{reason=\"manual\"}", 1));
  // The agent runs the purge and answers: nothing outstanding, one model left on the volume.
  EXPECT_TRUE(WaitFor("modelcache_coordinator_purge_commands_outstanding", 0)) << Metrics();
  EXPECT_TRUE(WaitFor("modelcache_coordinator_cached_models{volume=\"vol-a\"}", 1)) << Metrics();
  EXPECT_TRUE(WaitFor("modelcache_coordinator_purge_commands_failed", 0));
  {
    std::lock_guard lock(purged_mutex);
    ASSERT_EQ(purged.size(), 1u);
    EXPECT_EQ(purged[0].first.substr(0, 7), "manual:");
    EXPECT_EQ(purged[0].second, 1000u);
  }
  agent.Stop();
}

TEST(CoordinatorMetrics, AVolumeThatIsGoneLosesItsSeries) {
  prometheus::Registry registry;
  CoordinatorMetrics metrics(registry);
  CoordinatorMetrics::StoreState state;
  state.volumes = 2;
  state.models_per_volume = {{"vol-a", 3}, {"vol-b", 1}};
  metrics.SetStoreState(state);
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_cached_models{volume=\"vol-a\"} 3"));
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_cached_models{volume=\"vol-b\"} 1"));
  state.volumes = 1;
  state.models_per_volume = {{"vol-a", 4}};
  metrics.SetStoreState(state);
  text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_cached_models{volume=\"vol-a\"} 4"));
  EXPECT_EQ(text.find("vol-b"), std::string::npos) << text;
}

TEST(CoordinatorMetrics, SqliteErrorsCounterFollowsTheRunningCount) {
  prometheus::Registry registry;
  CoordinatorMetrics metrics(registry);
  CoordinatorMetrics::StoreState state;
  state.sqlite_errors = 2;
  metrics.SetStoreState(state);
  state.sqlite_errors = 5;
  metrics.SetStoreState(state);
  metrics.SetStoreState(state);  // no new errors: no increase
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_sqlite_errors_total 5"));
}

TEST(CoordinatorMetrics, PurgeDecisionsAreCountedByBoundedReason) {
  prometheus::Registry registry;
  CoordinatorMetrics metrics(registry);
  metrics.CountPurgeDecision("quota");
  metrics.CountPurgeDecision("quota");
  metrics.CountPurgeDecision("whatever");
  metrics.CountPurgeDecision("room");
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_purge_decisions_total{reason=\"room\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_purge_decisions_total{reason=\"quota\"} 2"));
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_purge_decisions_total{reason=\"other\"} 1"));
  EXPECT_THAT(text, HasSubstr("modelcache_coordinator_purge_decisions_total{reason=\"unused\"} 0"));
}

TEST(Database, CountsFailedStatements) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(dir.Join("t.db"));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->Errors(), 0u);
  EXPECT_FALSE((*db)->Execute("THIS IS NOT SQL").ok());
  EXPECT_FALSE((*db)->Prepare("SELECT * FROM no_such_table").ok());
  ASSERT_TRUE((*db)->Execute("CREATE TABLE t(x INTEGER NOT NULL)").ok());
  absl::StatusOr<StatementLease> insert = (*db)->Prepare("INSERT INTO t(x) VALUES (NULL)");
  ASSERT_TRUE(insert.ok());
  EXPECT_FALSE((*insert)->Run().ok());
  EXPECT_EQ((*db)->Errors(), 3u);
}

}  // namespace
}  // namespace modelcache
