#pragma once
// A real Prometheus server (Debian's /usr/bin/prometheus) on 127.0.0.1:<free port>, scraping
// the targets a test names, with its config and TSDB in a temp dir; plus the few HTTP API
// calls tests need (targets, instant queries, per-target metadata), parsed from JSON.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

struct PrometheusScrapeJob {
  std::string job;      // job_name, and so the `job` label of every series it scrapes
  std::string address;  // "127.0.0.1:9464": scraped at http://<address>/metrics
};

struct PrometheusOptions {
  std::vector<PrometheusScrapeJob> jobs;
  // Also the scrape timeout (Prometheus refuses a timeout longer than the interval).
  std::chrono::seconds scrape_interval{1};
  std::string binary = "/usr/bin/prometheus";
  std::chrono::milliseconds start_timeout{60'000};
};

// One entry of /api/v1/targets' activeTargets.
struct PrometheusTarget {
  std::string job;
  std::string instance;
  std::string scrape_url;
  std::string health;  // "up", "down" or "unknown" (not scraped yet)
  std::string last_error;
};

// One series of an instant-vector query result.
struct PrometheusSample {
  std::map<std::string, std::string> labels;  // includes __name__ unless the query dropped it
  double value = 0;
};

// One entry of /api/v1/targets/metadata.
struct PrometheusMetricMetadata {
  std::string metric;  // as the TYPE line names it (counters keep their _total)
  std::string type;    // counter, gauge, histogram, summary, unknown
  std::string help;
};

class PrometheusServer {
 public:
  // Writes the config, starts Prometheus and waits until /-/ready answers 200 (retrying on
  // another port if it was taken meanwhile). The error names the temp dir and quotes the log.
  static absl::StatusOr<std::unique_ptr<PrometheusServer>> Start(const PrometheusOptions& options);
  ~PrometheusServer();  // Stop(), then removes its temp dir

  uint16_t Port() const { return port_; }
  std::string BaseUrl() const;  // "http://127.0.0.1:<port>"
  pid_t Pid() const { return process_->Pid(); }
  // SIGTERM by PID (Prometheus flushes and exits), SIGKILL after 10 s. Idempotent.
  void Stop();

  // GET /api/v1/targets?state=active. UNAVAILABLE when Prometheus does not answer 200 with
  // status "success"; INTERNAL for JSON it cannot read.
  absl::StatusOr<std::vector<PrometheusTarget>> ActiveTargets() const;
  // GET /api/v1/query?query=<promql> (URL-encoded here). FAILED_PRECONDITION if the result is
  // not an instant vector; other errors as ActiveTargets().
  absl::StatusOr<std::vector<PrometheusSample>> Query(std::string_view promql) const;
  // GET /api/v1/targets/metadata?match_target={job="<job>"}: what the job's targets said
  // about each metric in their last scrape (TYPE and HELP lines).
  absl::StatusOr<std::vector<PrometheusMetricMetadata>> TargetMetadata(std::string_view job) const;

  std::string Log() const;  // Prometheus's stderr so far

 private:
  PrometheusServer() = default;

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Subprocess> process_;
  uint16_t port_ = 0;
};

}  // namespace modelcache::testing
