#include "tests/testing/s3rver_server.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "agent/fill/blocking_http.h"
#include "agent/fill/s3_source.h"
#include "tests/testing/source_access.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kPollInterval = std::chrono::milliseconds(50);

std::string S3rverBinary() {
  if (const char* override_path = std::getenv("MODELCACHE_S3RVER"); override_path && *override_path) {
    return override_path;
  }
  return std::string(MODELCACHE_SOURCE_DIR) + "/build/tools/node_modules/.bin/s3rver";
}

// "" while the file does not exist yet (s3rver has not written to it).
std::string ReadLog(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The port from s3rver's "S3rver listening on 127.0.0.1:<port>" line; 0 until it appears.
uint16_t ListeningPort(std::string_view log) {
  constexpr std::string_view kMarker = "listening on 127.0.0.1:";
  const size_t at = log.find(kMarker);
  if (at == std::string_view::npos) return 0;
  size_t pos = at + kMarker.size();
  uint32_t port = 0;
  while (pos < log.size() && log[pos] >= '0' && log[pos] <= '9') port = port * 10 + (log[pos++] - '0');
  // The number is complete only once the line's end is there.
  if (pos >= log.size() || port == 0 || port > 65535) return 0;
  return static_cast<uint16_t>(port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<S3rverServer>> S3rverServer::Start(std::string_view bucket) {
  const std::string binary = S3rverBinary();
  if (::access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        fmt::format("s3rver not found at {} (run scripts/setup.sh or set MODELCACHE_S3RVER)", binary));
  }
  std::unique_ptr<S3rverServer> server(new S3rverServer());
  server->dir_ = std::make_unique<TempDir>();
  const std::string log_path = server->dir_->Join("s3rver.log");

  SubprocessOptions options;
  // Port 0: s3rver binds a free port itself and prints it, so there is no race for one.
  options.argv = {binary, "-d", server->dir_->Join("data"), "-a", "127.0.0.1", "-p", "0",
                  "--configure-bucket", std::string(bucket)};
  // s3rver's continuation tokens use DES, which Node 17+ (OpenSSL 3) only offers through the
  // legacy provider; without it every truncated listing fails with HTTP 500.
  options.environment = {"NODE_OPTIONS=--openssl-legacy-provider"};
  options.stdout_path = log_path;
  options.stderr_path = server->dir_->Join("s3rver.err");
  std::filesystem::create_directories(server->dir_->Join("data"));
  auto process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  server->process_ = std::move(*process);

  const bool listening = PollUntil(
      [&] {
        server->port_ = ListeningPort(ReadLog(log_path));
        return server->port_ != 0 || !server->process_->Running();
      },
      kStartTimeout, kPollInterval);
  if (!listening || server->port_ == 0) {
    return absl::UnavailableError(fmt::format("s3rver did not report its port ({}): {} {}",
                                              server->process_->Running() ? "timeout" : "exited",
                                              ReadLog(log_path), ReadLog(options.stderr_path)));
  }

  // Listening is not the same as having created the bucket: ask for it.
  HttpRequest probe;
  probe.url = fmt::format("{}/{}/?list-type=2&max-keys=1", server->Endpoint(), bucket);
  probe.timeout = std::chrono::seconds(5);
  probe.network = AllowLoopback();
  long last_status = 0;
  const bool serving = PollUntil(
      [&] {
        auto response = PerformHttpRequest(probe);
        last_status = response.ok() ? response->status_code : 0;
        return last_status == 200;
      },
      kStartTimeout, kPollInterval);
  if (!serving) {
    return absl::UnavailableError(fmt::format("s3rver on port {} did not serve bucket {} (last HTTP {})",
                                              server->port_, bucket, last_status));
  }
  return server;
}

S3rverServer::~S3rverServer() {
  if (process_) process_->Terminate(std::chrono::seconds(5));
}

std::string S3rverServer::Endpoint() const { return fmt::format("http://127.0.0.1:{}", port_); }

SourceOptions S3rverServer::Options() const {
  SourceOptions options;
  options.s3_endpoint = Endpoint();
  options.s3_path_style = true;
  options.s3_region = "us-east-1";
  options.aws.access_key_id = std::string(kAccessKeyId);
  options.aws.secret_access_key = std::string(kSecretAccessKey);
  options.request_timeout = std::chrono::seconds(10);
  options.network = AllowLoopback();  // s3rver listens on 127.0.0.1
  return options;
}

absl::Status S3rverServer::PutObject(std::string_view bucket, std::string_view key, std::string_view body) const {
  const SourceOptions options = Options();
  HttpRequest request;
  request.method = "PUT";
  request.url = S3ObjectUrl(options, bucket, key);
  request.body = std::string(body);
  request.timeout = std::chrono::seconds(30);
  request.network = options.network;
  request.auth.aws_sigv4 = fmt::format("aws:amz:{}:s3", options.s3_region);
  request.auth.user_password = options.aws.access_key_id + ":" + options.aws.secret_access_key;
  request.auth.headers.push_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
  auto response = PerformHttpRequest(request);
  if (!response.ok()) return response.status();
  return HttpStatusToStatus(response->status_code, "PUT", request.url, response->body);
}

}  // namespace modelcache::testing
