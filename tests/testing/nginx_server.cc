#include "tests/testing/nginx_server.h"

#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/ports.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {
namespace {

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string Config(const NginxOptions& options, const std::filesystem::path& dir, uint16_t port) {
  const std::string d = dir.string();
  std::string config = absl::StrCat(
      "daemon off;\n", "master_process ", options.master_process ? "on" : "off", ";\n",
      "worker_processes 1;\n", ::geteuid() == 0 ? "user root;\n" : "", "pid ", d, "/nginx.pid;\n",
      "error_log ", d, "/error.log info;\n", "events { worker_connections 1024; }\n", "http {\n",
      // Tab-separated so that an empty field stays a field.
      "  log_format modelcache '$request_uri\\t$http_range\\t$status\\t$body_bytes_sent\\t$connection';\n",
      "  access_log ", d, "/access.log modelcache;\n",
      "  client_body_temp_path ", d, "/tmp/body;\n", "  proxy_temp_path ", d, "/tmp/proxy;\n",
      "  fastcgi_temp_path ", d, "/tmp/fastcgi;\n", "  uwsgi_temp_path ", d, "/tmp/uwsgi;\n",
      "  scgi_temp_path ", d, "/tmp/scgi;\n", "  default_type application/octet-stream;\n",
      "  sendfile on;\n", "  keepalive_requests 100000;\n", "  server {\n",
      "    listen 127.0.0.1:", port, ";\n", "    root ", options.root, ";\n");
  bool whole_file_location = false;
  for (const NginxLocation& location : options.locations) {
    absl::StrAppend(&config, "    location ", location.prefix, " {\n");
    if (location.whole_file_every != 0) {
      // $connection_requests is 1 for a connection's first request; its last digit picks
      // every 2nd, 5th or 10th. The internal location below serves the same file, ignoring Range.
      const char* last_digit = location.whole_file_every == 2 ? "[02468]" : location.whole_file_every == 5 ? "[05]" : "0";
      absl::StrAppend(&config, "      if ($connection_requests ~ \"", last_digit,
                      "$\") { rewrite ^ /.whole-file$uri last; }\n");
      whole_file_location = true;
    }
    if (location.return_status != 0) absl::StrAppend(&config, "      return ", location.return_status, ";\n");
    if (location.max_ranges) absl::StrAppend(&config, "      max_ranges ", *location.max_ranges, ";\n");
    if (!location.extra_directives.empty()) absl::StrAppend(&config, "      ", location.extra_directives, "\n");
    absl::StrAppend(&config, "    }\n");
  }
  if (whole_file_location) {
    absl::StrAppend(&config, "    location /.whole-file/ {\n      internal;\n      max_ranges 0;\n      alias ",
                    options.root, "/;\n    }\n");
  }
  absl::StrAppend(&config, "  }\n}\n");
  return config;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NginxServer>> NginxServer::Start(const NginxOptions& options) {
  for (const NginxLocation& location : options.locations) {
    if (location.whole_file_every != 0 && location.whole_file_every != 2 && location.whole_file_every != 5 &&
        location.whole_file_every != 10) {
      return absl::InvalidArgumentError(absl::StrCat("nginx location ", location.prefix, ": whole_file_every ",
                                                     location.whole_file_every, " (want 0, 2, 5 or 10)"));
    }
  }
  std::unique_ptr<NginxServer> server(new NginxServer());
  server->dir_ = std::make_unique<TempDir>();
  const std::filesystem::path dir = server->dir_->Path();
  std::filesystem::create_directories(dir / "tmp");
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const uint16_t port = FreeTcpPort();
    if (port == 0) return absl::InternalError("no free TCP port");
    const std::filesystem::path config_path = dir / "nginx.conf";
    {
      std::ofstream config(config_path, std::ios::trunc);
      config << Config(options, dir, port);
      if (!config) return absl::InternalError(absl::StrCat("cannot write ", config_path.string()));
    }
    SubprocessOptions process;
    process.argv = {options.binary, "-p", dir.string(), "-c", config_path.string(), "-e",
                    (dir / "error.log").string()};
    process.stdout_path = (dir / "stdout.log").string();
    process.stderr_path = (dir / "stderr.log").string();
    auto started = Subprocess::Start(process);
    if (!started.ok()) return started.status();
    std::unique_ptr<Subprocess> child = *std::move(started);
    bool ready = PollUntil([&] { return !child->Running() || TcpPortAccepts(port); }, options.start_timeout);
    if (ready && child->Running()) {
      server->process_ = std::move(child);
      server->port_ = port;
      return server;
    }
    child.reset();  // kills it if it still runs
    last_error = absl::StrCat(ReadAll(dir / "stderr.log"), ReadAll(dir / "error.log"));
    if (last_error.find("Address already in use") == std::string::npos) break;
  }
  return absl::InternalError(absl::StrCat("nginx did not start (config in ", dir.string(), "): ", last_error));
}

NginxServer::~NginxServer() { Stop(); }

std::string NginxServer::BaseUrl() const { return absl::StrCat("http://127.0.0.1:", port_); }

void NginxServer::Stop() {
  if (!process_) return;
  if (process_->Running()) {
    (void)process_->Signal(SIGQUIT);
    if (!process_->WaitExit(std::chrono::seconds(5)).ok()) process_.reset();  // SIGKILL
  }
  process_.reset();
}

std::vector<AccessRecord> NginxServer::AccessLog() const {
  std::vector<AccessRecord> records;
  std::istringstream lines(ReadAll(dir_->Path() / "access.log"));
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, '\t');
    if (fields.size() != 5) continue;
    AccessRecord record;
    record.uri = fields[0];
    record.range = fields[1] == "-" ? "" : fields[1];
    std::from_chars(fields[2].data(), fields[2].data() + fields[2].size(), record.status);
    std::from_chars(fields[3].data(), fields[3].data() + fields[3].size(), record.bytes);
    std::from_chars(fields[4].data(), fields[4].data() + fields[4].size(), record.connection);
    records.push_back(std::move(record));
  }
  return records;
}

std::string NginxServer::ErrorLog() const { return ReadAll(dir_->Path() / "error.log"); }

}  // namespace modelcache::testing
