// A real Prometheus scraping a real modelcache-agent and a real modelcache-coordinator, all on
// 127.0.0.1: what a platform engineer's monitoring sees. Series are checked through
// Prometheus's HTTP API, so a metric only counts once Prometheus has parsed and stored it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/http_get.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/source_access.h"
#include "tests/testing/prometheus_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::PollUntil;
using testing::PrometheusSample;
using testing::PrometheusServer;
using testing::Subprocess;
using testing::SubprocessOptions;

constexpr char kAgentJob[] = "modelcache-agent";
constexpr char kCoordinatorJob[] = "modelcache-coordinator";
// Startup of each daemon, and the first scrapes (interval 1 s) after it.
constexpr auto kDeadline = 30s;

// The series each daemon exports from the moment it starts (agent/metrics.cc,
// coordinator/metrics.cc; docs/metrics.md). A histogram is checked through its _count series.
const std::vector<std::string> kAgentSeries = {
    "modelcache_ensure_requests_total",
    "modelcache_ensure_fallbacks_total",
    "modelcache_fills_in_progress",
    "modelcache_fills_total",
    "modelcache_fill_bytes_total",
    "modelcache_fill_duration_seconds_count",
    "modelcache_fill_chunk_retries_total",
    "modelcache_purges_total",
    "modelcache_purged_bytes_total",
    "modelcache_live_leases",
    "modelcache_coordinator_connected",
    "modelcache_coordinator_last_report_timestamp_seconds",
    "modelcache_cache_models",
    "modelcache_cache_used_bytes",
    "modelcache_cache_capacity_bytes",
    "modelcache_cache_free_bytes"};
const std::vector<std::string> kCoordinatorSeries = {
    "modelcache_coordinator_agents_connected",
    "modelcache_coordinator_usage_reports_total",
    "modelcache_coordinator_usage_report_seconds_count",
    "modelcache_coordinator_command_results_total",
    "modelcache_coordinator_purged_bytes_total",
    "modelcache_coordinator_auth_refused_total",
    "modelcache_coordinator_volumes",
    "modelcache_coordinator_purge_decisions_total",
    "modelcache_coordinator_purge_commands_outstanding",
    "modelcache_coordinator_purge_commands_failed",
    "modelcache_coordinator_policy_loop_duration_seconds_count",
    "modelcache_coordinator_policy_loop_last_run_timestamp_seconds",
    "modelcache_coordinator_sqlite_errors_total"};

// Why `metric` breaks Prometheus naming conventions, or "" when it follows them.
std::string NamingProblem(const testing::PrometheusMetricMetadata& metric) {
  const std::string& name = metric.metric;
  if (!absl::StartsWith(name, "modelcache_")) return "no modelcache_ prefix";
  const bool total = absl::EndsWith(name, "_total");
  if (metric.type == "counter" && !total) return "counter without _total";
  if (metric.type != "counter" && total) return metric.type + " ending in _total";
  // The unit is the last word before any _total.
  const std::string base = total ? name.substr(0, name.size() - 6) : name;
  for (const char* unit : {"_ms", "_us", "_milliseconds", "_microseconds", "_minutes",
                                "_hours", "_kb", "_mb", "_kilobytes", "_megabytes"}) {
    if (absl::EndsWith(base, unit)) return absl::StrCat("not a base unit (", unit, ")");
  }
  if ((metric.type == "histogram" || metric.type == "summary") &&
      !absl::EndsWith(name, "_seconds") && !absl::EndsWith(name, "_bytes")) {
    return metric.type + " without a unit suffix (_seconds, _bytes)";
  }
  if (absl::StrContains(name, "bytes") && !absl::EndsWith(name, "_bytes") &&
      !absl::EndsWith(name, "_bytes_total")) {
    return "bytes not as the unit suffix";
  }
  return "";
}

std::string Binary(const std::string& relative) {
  return absl::StrCat(MODELCACHE_BINARY_DIR, "/", relative);
}

class PrometheusScrapeTest : public ::testing::Test {
 protected:
  void StartAgent() {
    agent_metrics_port_ = testing::FreeTcpPort();
    testing::WriteTestFile(dir_.Path() / "agent.yaml",
                           absl::StrCat("cacheRoot: ", dir_.Join("cache"), "\n",
                                        "socket: ", Socket(), "\n",
                                        "metricsAddress: 127.0.0.1:", agent_metrics_port_, "\n",
                                        "coordinator: 127.0.0.1:", coordinator_port_, "\n",
                                        "nodeName: prometheus-test\n",
                                        // the origin listens on 127.0.0.1, refused by default
                                        "network: {allow: [\"", testing::LoopbackOrigins()[0], "\"]}\n"));
    SubprocessOptions options;
    options.argv = {Binary("agent/modelcache-agent"), "--config", dir_.Join("agent.yaml")};
    options.stderr_path = dir_.Join("agent.log");
    absl::StatusOr<std::unique_ptr<Subprocess>> agent = Subprocess::Start(options);
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    // Ready means the cache was checked and the socket listens: fetches can start.
    ASSERT_TRUE(PollUntil(
        [&] { return !agent_->Running() || testing::HttpGet(AgentUrl("/readyz")).status == 200; },
        kDeadline, 50ms))
        << "agent not ready:\n" << testing::ReadTestFile(dir_.Path() / "agent.log");
    ASSERT_TRUE(agent_->Running()) << "agent exited:\n"
                                   << testing::ReadTestFile(dir_.Path() / "agent.log");
  }

  void StartCoordinator() {
    coordinator_metrics_port_ = testing::FreeTcpPort();
    testing::WriteTestFile(
        dir_.Path() / "coordinator.yaml",
        absl::StrCat("modelsCacheStorage:\n  enabled: true\n  storageSize: 1Gi\n",
                     "  checkUnusedCachedModelsEvery: 1s\n",
                     "coordinator:\n  defaultCaching: enabled\n  listen: 127.0.0.1:",
                     coordinator_port_,
                     "\n  database: ", dir_.Join("coordinator.db"),
                     "\n  metricsAddress: 127.0.0.1:", coordinator_metrics_port_, "\n"));
    SubprocessOptions options;
    options.argv = {Binary("coordinator/modelcache-coordinator"), "--config",
                    dir_.Join("coordinator.yaml")};
    // JSON lines, asked for the way a Deployment would: the environment.
    options.environment = {"MODELCACHE_LOG_JSON=1"};
    options.stderr_path = dir_.Join("coordinator.log");
    absl::StatusOr<std::unique_ptr<Subprocess>> coordinator = Subprocess::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    ASSERT_TRUE(PollUntil(
        [&] {
          return !coordinator_->Running() ||
                 testing::HttpGet(CoordinatorUrl("/readyz")).status == 200;
        },
        kDeadline, 50ms))
        << "coordinator never ready:\n"
        << testing::ReadTestFile(dir_.Path() / "coordinator.log");
    ASSERT_TRUE(coordinator_->Running()) << "coordinator exited:\n"
                                         << testing::ReadTestFile(dir_.Path() / "coordinator.log");
  }

  void StartPrometheus() {
    testing::PrometheusOptions options;
    options.jobs = {{kAgentJob, absl::StrCat("127.0.0.1:", agent_metrics_port_)},
                    {kCoordinatorJob, absl::StrCat("127.0.0.1:", coordinator_metrics_port_)}};
    absl::StatusOr<std::unique_ptr<PrometheusServer>> prometheus = PrometheusServer::Start(options);
    ASSERT_TRUE(prometheus.ok()) << prometheus.status();
    prometheus_ = *std::move(prometheus);
  }

  // Starts everything and waits until Prometheus reports both targets up.
  void StartAll() {
    // The agent reports to the coordinator, which may start after it (the agent retries).
    coordinator_port_ = testing::FreeTcpPort();
    ASSERT_NO_FATAL_FAILURE(StartAgent());
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    ASSERT_NO_FATAL_FAILURE(StartPrometheus());
    std::string last_seen;
    bool up = PollUntil(
        [&] {
          absl::StatusOr<std::vector<testing::PrometheusTarget>> targets =
              prometheus_->ActiveTargets();
          if (!targets.ok()) {
            last_seen = targets.status().ToString();
            return false;
          }
          last_seen.clear();
          std::set<std::string> up_jobs;
          for (const testing::PrometheusTarget& target : *targets) {
            absl::StrAppend(&last_seen, target.job, " ", target.scrape_url, " ", target.health,
                            " ", target.last_error, "\n");
            if (target.health == "up") up_jobs.insert(target.job);
          }
          return up_jobs.count(kAgentJob) == 1 && up_jobs.count(kCoordinatorJob) == 1;
        },
        kDeadline, 100ms);
    ASSERT_TRUE(up) << "targets never both up:\n" << last_seen << "\nprometheus log:\n"
                    << prometheus_->Log();
  }

  std::string Socket() const { return dir_.Join("agent.sock"); }
  std::string AgentUrl(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", agent_metrics_port_, path);
  }
  std::string CoordinatorUrl(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", coordinator_metrics_port_, path);
  }

  // The series of `promql`, or none (and a test failure) if the query fails.
  std::vector<PrometheusSample> Query(const std::string& promql) {
    absl::StatusOr<std::vector<PrometheusSample>> samples = prometheus_->Query(promql);
    EXPECT_TRUE(samples.ok()) << samples.status();
    return samples.value_or(std::vector<PrometheusSample>{});
  }

  // Polls, for at most kDeadline, until a series of `promql` has a value `accept` takes;
  // returns that value, or nothing.
  std::optional<double> WaitForValue(const std::string& promql,
                                     const std::function<bool(double)>& accept) {
    std::optional<double> found;
    PollUntil(
        [&] {
          for (const PrometheusSample& sample : Query(promql)) {
            if (accept(sample.value)) {
              found = sample.value;
              return true;
            }
          }
          return false;
        },
        kDeadline, 200ms);
    return found;
  }

  testing::TempDir dir_;
  uint16_t agent_metrics_port_ = 0;
  uint16_t coordinator_metrics_port_ = 0;
  uint16_t coordinator_port_ = 0;
  // Declared after dir_: stopped (by PID) before the dir goes.
  std::unique_ptr<Subprocess> agent_;
  std::unique_ptr<Subprocess> coordinator_;
  std::unique_ptr<PrometheusServer> prometheus_;
};

TEST_F(PrometheusScrapeTest, BothDaemonsAreUpWithTheirSeriesUnderTheirJob) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  for (const auto& [job, names] : {std::pair{std::string(kAgentJob), kAgentSeries},
                                   std::pair{std::string(kCoordinatorJob), kCoordinatorSeries}}) {
    EXPECT_TRUE(WaitForValue(absl::StrCat("up{job=\"", job, "\"}"), [](double v) { return v == 1; }))
        << job;
    for (const std::string& name : names) {
      // The up check above means one scrape was stored, but not necessarily visible to a
      // query yet: poll.
      std::string promql = absl::StrCat(name, "{job=\"", job, "\"}");
      EXPECT_TRUE(WaitForValue(promql, [](double) { return true; })) << promql << " never appeared";
      for (const PrometheusSample& sample : Query(promql)) {
        EXPECT_EQ(sample.labels.at("job"), job) << name;
        EXPECT_EQ(sample.labels.at("__name__"), name);
      }
    }
  }
  // Nothing of one daemon shows up under the other's job.
  EXPECT_THAT(Query(absl::StrCat("modelcache_cache_used_bytes{job=\"", kCoordinatorJob, "\"}")),
              ::testing::IsEmpty());
  EXPECT_THAT(Query(absl::StrCat("modelcache_coordinator_agents_connected{job=\"", kAgentJob, "\"}")),
              ::testing::IsEmpty());
  // The agent's ensure counter has its three results, none counted yet.
  std::vector<PrometheusSample> ensure =
      Query(absl::StrCat("modelcache_ensure_requests_total{job=\"", kAgentJob, "\"}"));
  std::set<std::string> results;
  for (const PrometheusSample& sample : ensure) {
    results.insert(sample.labels.at("result"));
    EXPECT_EQ(sample.value, 0) << sample.labels.at("result");
  }
  EXPECT_THAT(results, ::testing::ElementsAre("error", "hit", "miss"));

  EXPECT_EQ(testing::HttpGet(AgentUrl("/healthz")).status, 200);
  EXPECT_EQ(testing::HttpGet(AgentUrl("/readyz")).status, 200);
  EXPECT_EQ(testing::HttpGet(CoordinatorUrl("/healthz")).status, 200);
  EXPECT_EQ(testing::HttpGet(CoordinatorUrl("/readyz")).status, 200);
  EXPECT_EQ(testing::HttpGet(CoordinatorUrl("/nothing")).status, 404);
  // The coordinator logs JSON lines (MODELCACHE_LOG_JSON=1); its start-up line is one.
  const std::string coordinator_log = testing::ReadTestFile(dir_.Path() / "coordinator.log");
  EXPECT_TRUE(absl::StartsWith(coordinator_log, "{\"ts\":\"")) << coordinator_log;
  EXPECT_THAT(coordinator_log, ::testing::HasSubstr("\"component\":\"coordinator\""));

  // The agent's stream reached the coordinator: both sides say so.
  EXPECT_TRUE(WaitForValue(absl::StrCat("modelcache_coordinator_connected{job=\"", kAgentJob, "\"}"),
                           [](double v) { return v == 1; }));
  EXPECT_TRUE(WaitForValue(
      absl::StrCat("modelcache_coordinator_last_report_timestamp_seconds{job=\"", kAgentJob, "\"}"),
      [](double v) { return v > 1e9; }));
  EXPECT_TRUE(WaitForValue(
      absl::StrCat("modelcache_coordinator_agents_connected{job=\"", kCoordinatorJob, "\"}"),
      [](double v) { return v == 1; }));
  EXPECT_TRUE(WaitForValue(absl::StrCat("modelcache_coordinator_volumes{job=\"", kCoordinatorJob, "\"}"),
                           [](double v) { return v == 1; }));
  // The policy loop runs every second here.
  EXPECT_TRUE(WaitForValue(
      absl::StrCat("modelcache_coordinator_policy_loop_duration_seconds_count{job=\"",
                   kCoordinatorJob, "\"}"),
      [](double v) { return v >= 1; }));
  EXPECT_TRUE(WaitForValue(
      absl::StrCat("modelcache_coordinator_policy_loop_last_run_timestamp_seconds{job=\"",
                   kCoordinatorJob, "\"}"),
      [](double v) { return v > 1e9; }));
}

TEST_F(PrometheusScrapeTest, AFetchThroughTheAgentIsCountedAsAMissInPrometheus) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  const fs::path origin_root = dir_.Path() / "origin";
  std::vector<v1::ManifestFile> files = testing::WriteRandomModel(
      origin_root / "model", {{"config.json", 1500}, {"weights/part-1.bin", 3u << 20}});
  ASSERT_TRUE(testing::WriteTestFile(origin_root / "model" / "modelcache.json",
                                     testing::HttpListingJson(files)));
  uint64_t model_bytes = 0;
  for (const v1::ManifestFile& file : files) model_bytes += file.size();
  testing::NginxOptions nginx_options;
  nginx_options.root = origin_root.string();
  absl::StatusOr<std::unique_ptr<testing::NginxServer>> origin =
      testing::NginxServer::Start(nginx_options);
  ASSERT_TRUE(origin.ok()) << origin.status();

  const std::string miss =
      absl::StrCat("modelcache_ensure_requests_total{job=\"", kAgentJob, "\",result=\"miss\"}");
  // Scraped as 0 before the fetch, so the check below sees the fetch, not a leftover.
  ASSERT_TRUE(WaitForValue(miss, [](double v) { return v == 0; }));

  SubprocessOptions ctl;
  ctl.argv = {Binary("cli/modelcachectl"), "fetch", "--model", "scraped", "--version", "v1",
              "--source", (*origin)->BaseUrl() + "/model/"};
  ctl.environment = {"MODELCACHE_DISABLE=", "AIOLI_DISABLE_MODEL_CACHE=",
                     "MODELCACHE_SOCKET=" + Socket()};
  ctl.stdout_path = dir_.Join("ctl.out");
  ctl.stderr_path = dir_.Join("ctl.err");
  absl::StatusOr<std::unique_ptr<Subprocess>> fetch = Subprocess::Start(ctl);
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  absl::StatusOr<testing::ExitStatus> exit = (*fetch)->WaitExit(120s);
  ASSERT_TRUE(exit.ok()) << exit.status();
  ASSERT_TRUE(exit->Success()) << exit->ToString() << "\n"
                               << testing::ReadTestFile(ctl.stderr_path) << "\nagent log:\n"
                               << testing::ReadTestFile(dir_.Path() / "agent.log");

  std::optional<double> misses = WaitForValue(miss, [](double v) { return v >= 1; });
  ASSERT_TRUE(misses.has_value()) << "Prometheus never saw the miss: " << miss;
  EXPECT_EQ(*misses, 1);
  EXPECT_TRUE(WaitForValue(absl::StrCat("modelcache_cache_models{job=\"", kAgentJob, "\"}"),
                           [](double v) { return v == 1; }));
  EXPECT_TRUE(WaitForValue(absl::StrCat("modelcache_cache_used_bytes{job=\"", kAgentJob, "\"}"),
                           [&](double v) { return v >= static_cast<double>(model_bytes); }))
      << "want at least the model's " << model_bytes << " bytes";
  // The fill over http: its bytes, its duration, its result.
  EXPECT_TRUE(WaitForValue(
      absl::StrCat("modelcache_fill_bytes_total{job=\"", kAgentJob, "\",scheme=\"http\"}"),
      [&](double v) { return v == static_cast<double>(model_bytes); }))
      << "want the model's " << model_bytes << " bytes";
  EXPECT_TRUE(WaitForValue(absl::StrCat("modelcache_fills_total{job=\"", kAgentJob,
                                        "\",scheme=\"http\",result=\"ok\"}"),
                           [](double v) { return v == 1; }));
  EXPECT_TRUE(WaitForValue(absl::StrCat("modelcache_fill_duration_seconds_count{job=\"", kAgentJob,
                                        "\",scheme=\"http\"}"),
                           [](double v) { return v == 1; }));
  // The agent's log has the fill as one key=value line.
  EXPECT_THAT(testing::ReadTestFile(dir_.Path() / "agent.log"),
              ::testing::HasSubstr(absl::StrCat("fill finished model=scraped version=v1 bytes=",
                                                model_bytes, " duration_ms=")));
  // The coordinator learnt of the model from the agent's report.
  EXPECT_TRUE(WaitForValue(
      absl::StrCat("modelcache_coordinator_cached_models{job=\"", kCoordinatorJob, "\"}"),
      [](double v) { return v == 1; }));
  // The fetch filled the model: no hit was counted.
  EXPECT_THAT(Query(absl::StrCat("modelcache_ensure_requests_total{job=\"", kAgentJob,
                                 "\",result=\"hit\"} == 0")),
              ::testing::SizeIs(1));
}

TEST_F(PrometheusScrapeTest, MetricNamesFollowPrometheusConventions) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  std::vector<std::string> problems;
  for (const char* job : {kAgentJob, kCoordinatorJob}) {
    std::vector<testing::PrometheusMetricMetadata> metadata;
    // Metadata is kept from the first scrape on; both targets are up, so this is quick.
    ASSERT_TRUE(PollUntil(
        [&] {
          absl::StatusOr<std::vector<testing::PrometheusMetricMetadata>> read =
              prometheus_->TargetMetadata(job);
          if (read.ok()) metadata = *std::move(read);
          return !metadata.empty();
        },
        kDeadline, 200ms))
        << "no metadata for " << job;
    std::set<std::string> names;
    for (const testing::PrometheusMetricMetadata& metric : metadata) {
      names.insert(metric.metric);
      // prometheus-cpp's Exposer (the coordinator's /metrics) adds exposer_* series about its
      // own scrapes: the library's names, not ours to rename.
      if (absl::StartsWith(metric.metric, "exposer_")) continue;
      std::string problem = NamingProblem(metric);
      if (!problem.empty()) {
        problems.push_back(absl::StrCat(job, ": ", metric.metric, " (", metric.type, "): ", problem));
      }
    }
    // The check above must have seen the daemon's own metrics, not only library ones.
    const std::vector<std::string>& expected =
        std::string(job) == kAgentJob ? kAgentSeries : kCoordinatorSeries;
    for (std::string name : expected) {
      if (absl::EndsWith(name, "_count")) name.resize(name.size() - 6);
      EXPECT_EQ(names.count(name), 1u) << job << ": no metadata for " << name;
    }
  }
  EXPECT_THAT(problems, ::testing::IsEmpty());
}

}  // namespace
}  // namespace modelcache
