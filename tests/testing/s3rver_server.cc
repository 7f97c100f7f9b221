#include "tests/testing/s3rver_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/fill/blocking_http.h"
#include "agent/fill/s3_source.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kPollInterval = std::chrono::milliseconds(50);

std::string S3rverBinary() {
  if (const char* override_path = std::getenv("MODELCACHE_S3RVER"); override_path && *override_path) {
    return override_path;
  }
  return std::string(MODELCACHE_SOURCE_DIR) + "/build/tools/node_modules/.bin/s3rver";
}

std::string ReadWholeFile(const fs::path& path) {
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
  // The line is complete only once its newline is there.
  if (pos >= log.size() || port == 0 || port > 65535) return 0;
  return static_cast<uint16_t>(port);
}

// SIGTERM, then SIGKILL if it is still there after `grace`; reaps the child either way.
void StopProcess(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + grace;
  while (Clock::now() < deadline) {
    int status = 0;
    const pid_t reaped = ::waitpid(pid, &status, WNOHANG);
    if (reaped == pid || reaped < 0) return;
    std::this_thread::sleep_for(kPollInterval);
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<S3rverServer>> S3rverServer::Start(std::string_view bucket) {
  const std::string binary = S3rverBinary();
  if (::access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        fmt::format("s3rver not found at {} (run scripts/setup.sh or set MODELCACHE_S3RVER)", binary));
  }
  std::string pattern = (fs::temp_directory_path() / "s3rver.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed for s3rver");
  const fs::path directory = pattern;
  const std::string data_dir = (directory / "data").string();
  const std::string log_path = (directory / "s3rver.log").string();
  fs::create_directories(data_dir);

  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  const std::string bucket_name(bucket);
  std::vector<const char*> argv = {binary.c_str(), "-d", data_dir.c_str(), "-a", "127.0.0.1", "-p",
                                   "0", "--configure-bucket", bucket_name.c_str(), nullptr};
  // s3rver's continuation tokens use DES, which Node 17+ (OpenSSL 3) only offers through the
  // legacy provider; without it every truncated listing fails with HTTP 500.
  std::vector<std::string> environment;
  std::string node_options = "NODE_OPTIONS=--openssl-legacy-provider";
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view variable(*entry);
    if (variable.starts_with("NODE_OPTIONS=")) {
      node_options += " " + std::string(variable.substr(13));
    } else {
      environment.emplace_back(variable);
    }
  }
  environment.push_back(node_options);
  std::vector<const char*> envp;
  for (const std::string& variable : environment) envp.push_back(variable.c_str());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed for s3rver");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
    if (::getppid() != parent) ::_exit(126);
    const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::execve(binary.c_str(), const_cast<char* const*>(argv.data()), const_cast<char* const*>(envp.data()));
    ::_exit(127);
  }
  std::unique_ptr<S3rverServer> server(new S3rverServer(pid, 0, directory));

  const auto deadline = Clock::now() + kStartTimeout;
  while (server->port_ == 0) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = 0;  // already reaped
      return absl::InternalError(fmt::format("s3rver exited during start-up: {}", ReadWholeFile(log_path)));
    }
    if (Clock::now() > deadline) {
      return absl::DeadlineExceededError(fmt::format("s3rver did not report its port: {}", ReadWholeFile(log_path)));
    }
    server->port_ = ListeningPort(ReadWholeFile(log_path));
    if (server->port_ == 0) std::this_thread::sleep_for(kPollInterval);
  }

  // Listening is not the same as having configured the bucket: ask for it.
  HttpRequest probe;
  probe.url = fmt::format("{}/{}/?list-type=2&max-keys=1", server->Endpoint(), bucket_name);
  probe.timeout = std::chrono::seconds(5);
  while (true) {
    auto response = PerformHttpRequest(probe);
    if (response.ok() && response->status_code == 200) break;
    if (Clock::now() > deadline) {
      return absl::DeadlineExceededError(fmt::format(
          "s3rver on port {} did not serve bucket {}: {}", server->port_, bucket_name,
          response.ok() ? fmt::format("HTTP {}", response->status_code) : response.status().ToString()));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return server;
}

S3rverServer::~S3rverServer() {
  StopProcess(pid_, std::chrono::seconds(5));
  std::error_code ignored;
  fs::remove_all(directory_, ignored);
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
  return options;
}

absl::Status S3rverServer::PutObject(std::string_view bucket, std::string_view key, std::string_view body) const {
  const SourceOptions options = Options();
  HttpRequest request;
  request.method = "PUT";
  request.url = S3ObjectUrl(options, bucket, key);
  request.body = std::string(body);
  request.timeout = std::chrono::seconds(30);
  request.auth.aws_sigv4 = fmt::format("aws:amz:{}:s3", options.s3_region);
  request.auth.user_password = options.aws.access_key_id + ":" + options.aws.secret_access_key;
  request.auth.headers.push_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
  auto response = PerformHttpRequest(request);
  if (!response.ok()) return response.status();
  return HttpStatusToStatus(response->status_code, "PUT", request.url, response->body);
}

}  // namespace modelcache
