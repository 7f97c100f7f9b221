#include "tests/testing/prometheus_server.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/testing/http_get.h"
#include "tests/testing/ports.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string Config(const PrometheusOptions& options) {
  const std::string interval = absl::StrCat(options.scrape_interval.count(), "s");
  std::string config = absl::StrCat("global:\n  scrape_interval: ", interval,
                                    "\n  scrape_timeout: ", interval,
                                    "\n  evaluation_interval: ", interval, "\nscrape_configs:\n");
  for (const PrometheusScrapeJob& job : options.jobs) {
    absl::StrAppend(&config, "  - job_name: '", job.job, "'\n    static_configs:\n",
                    "      - targets: ['", job.address, "']\n");
  }
  return config;
}

// RFC 3986 unreserved characters stay, everything else is %XX: enough for PromQL in a query
// string ({, }, ", =, spaces).
std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return encoded;
}

// GETs `url` and returns the API envelope's "data" value.
absl::StatusOr<Value> ApiData(const std::string& url) {
  HttpResponse response = HttpGet(url);
  if (response.status != 200) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": HTTP ", response.status, ": ", response.body));
  }
  Struct envelope;
  auto parsed = google::protobuf::util::JsonStringToMessage(response.body, &envelope);
  if (!parsed.ok()) {
    return absl::InternalError(
        absl::StrCat("GET ", url, ": bad JSON (", parsed.ToString(), "): ", response.body));
  }
  const auto& fields = envelope.fields();
  auto status = fields.find("status");
  auto data = fields.find("data");
  if (status == fields.end() || status->second.string_value() != "success" || data == fields.end()) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": not a success: ", response.body));
  }
  return data->second;
}

std::string StringField(const Struct& object, const std::string& key) {
  auto found = object.fields().find(key);
  return found == object.fields().end() ? "" : found->second.string_value();
}

std::map<std::string, std::string> Labels(const Struct& object, const std::string& key) {
  std::map<std::string, std::string> labels;
  auto found = object.fields().find(key);
  if (found == object.fields().end()) return labels;
  for (const auto& [name, value] : found->second.struct_value().fields()) {
    labels[name] = value.string_value();
  }
  return labels;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PrometheusServer>> PrometheusServer::Start(
    const PrometheusOptions& options) {
  std::unique_ptr<PrometheusServer> server(new PrometheusServer());
  server->dir_ = std::make_unique<TempDir>();
  const std::filesystem::path dir = server->dir_->Path();
  const std::filesystem::path config_path = dir / "prometheus.yml";
  if (!WriteTestFile(config_path, Config(options))) {
    return absl::InternalError(absl::StrCat("cannot write ", config_path.string()));
  }
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const uint16_t port = FreeTcpPort();
    if (port == 0) return absl::InternalError("no free TCP port");
    // A fresh TSDB per attempt: a killed attempt may leave its lock file behind.
    const std::filesystem::path storage = dir / absl::StrCat("tsdb-", attempt);
    const std::filesystem::path log = dir / absl::StrCat("prometheus-", attempt, ".log");
    SubprocessOptions process;
    process.argv = {options.binary,
                    "--config.file=" + config_path.string(),
                    "--storage.tsdb.path=" + storage.string(),
                    absl::StrCat("--web.listen-address=127.0.0.1:", port),
                    "--log.level=info"};
    process.working_directory = dir.string();
    process.stdout_path = (dir / "stdout.log").string();
    process.stderr_path = log.string();
    auto started = Subprocess::Start(process);
    if (!started.ok()) return started.status();
    std::unique_ptr<Subprocess> child = *std::move(started);
    const std::string ready_url = absl::StrCat("http://127.0.0.1:", port, "/-/ready");
    bool ready = PollUntil([&] { return !child->Running() || HttpGet(ready_url).status == 200; },
                           options.start_timeout, std::chrono::milliseconds(50));
    if (ready && child->Running()) {
      server->process_ = std::move(child);
      server->port_ = port;
      return server;
    }
    child.reset();  // kills it if it still runs
    last_error = ReadAll(log);
    if (last_error.find("address already in use") == std::string::npos) break;
  }
  return absl::InternalError(
      absl::StrCat("prometheus did not start (config in ", dir.string(), "): ", last_error));
}

PrometheusServer::~PrometheusServer() { Stop(); }

std::string PrometheusServer::BaseUrl() const { return absl::StrCat("http://127.0.0.1:", port_); }

void PrometheusServer::Stop() {
  if (!process_) return;
  process_->Terminate(std::chrono::seconds(10));
  process_.reset();
}

absl::StatusOr<std::vector<PrometheusTarget>> PrometheusServer::ActiveTargets() const {
  absl::StatusOr<Value> data = ApiData(BaseUrl() + "/api/v1/targets?state=active");
  if (!data.ok()) return data.status();
  std::vector<PrometheusTarget> targets;
  auto active = data->struct_value().fields().find("activeTargets");
  if (active == data->struct_value().fields().end()) return targets;
  for (const Value& entry : active->second.list_value().values()) {
    const Struct& object = entry.struct_value();
    std::map<std::string, std::string> labels = Labels(object, "labels");
    targets.push_back(PrometheusTarget{.job = labels["job"],
                                       .instance = labels["instance"],
                                       .scrape_url = StringField(object, "scrapeUrl"),
                                       .health = StringField(object, "health"),
                                       .last_error = StringField(object, "lastError")});
  }
  return targets;
}

absl::StatusOr<std::vector<PrometheusSample>> PrometheusServer::Query(std::string_view promql) const {
  absl::StatusOr<Value> data = ApiData(BaseUrl() + "/api/v1/query?query=" + UrlEncode(promql));
  if (!data.ok()) return data.status();
  const Struct& object = data->struct_value();
  if (StringField(object, "resultType") != "vector") {
    return absl::FailedPreconditionError(absl::StrCat("query ", std::string(promql), ": result is a ",
                                                      StringField(object, "resultType")));
  }
  std::vector<PrometheusSample> samples;
  auto result = object.fields().find("result");
  if (result == object.fields().end()) return samples;
  for (const Value& entry : result->second.list_value().values()) {
    PrometheusSample sample;
    sample.labels = Labels(entry.struct_value(), "metric");
    auto value = entry.struct_value().fields().find("value");
    // [ <unix time>, "<value>" ]; Prometheus quotes the value to keep NaN and Inf.
    if (value != entry.struct_value().fields().end() &&
        value->second.list_value().values_size() == 2) {
      const std::string text = value->second.list_value().values(1).string_value();
      try {
        sample.value = std::stod(text);
      } catch (const std::exception&) {
        return absl::InternalError(absl::StrCat("query ", std::string(promql), ": value ", text));
      }
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

absl::StatusOr<std::vector<PrometheusMetricMetadata>> PrometheusServer::TargetMetadata(
    std::string_view job) const {
  absl::StatusOr<Value> data = ApiData(BaseUrl() + "/api/v1/targets/metadata?match_target=" +
                                       UrlEncode(absl::StrCat("{job=\"", std::string(job), "\"}")));
  if (!data.ok()) return data.status();
  std::vector<PrometheusMetricMetadata> metadata;
  for (const Value& entry : data->list_value().values()) {
    const Struct& object = entry.struct_value();
    metadata.push_back(PrometheusMetricMetadata{.metric = StringField(object, "metric"),
                                                .type = StringField(object, "type"),
                                                .help = StringField(object, "help")});
  }
  return metadata;
}

std::string PrometheusServer::Log() const {
  std::string log;
  for (int attempt = 0; attempt < 3; ++attempt) {
    log += ReadAll(dir_->Path() / absl::StrCat("prometheus-", attempt, ".log"));
  }
  return log;
}

}  // namespace modelcache::testing
