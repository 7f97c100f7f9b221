#pragma once
// A real nginx serving a directory on 127.0.0.1:<free port>, for HTTP source tests. The config
// and logs live in a temp dir; the access log records every request's URI, Range header,
// status, body bytes and connection so tests can count what was served, and how.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::testing {

struct NginxLocation {
  std::string prefix;           // "/forbidden/"
  int return_status = 0;        // e.g. 403: every request under prefix gets it; 0: serve files
  std::optional<int> max_ranges;  // 0: ignore Range headers (answer 200 with the whole file)
  std::string extra_directives;   // appended verbatim inside the location block
  // 2, 5 or 10: every 2nd, 5th or 10th request on each connection gets 200 and the whole
  // file whatever its Range header says, as from a CDN edge or a proxy that drops Range now
  // and then (the others get their 206). 0: never.
  int whole_file_every = 0;
};

struct NginxOptions {
  std::string root;  // directory served at "/"
  std::vector<NginxLocation> locations;
  bool master_process = false;  // false: one process, so the PID is the whole server
  std::string binary = "/usr/sbin/nginx";
  std::chrono::milliseconds start_timeout{10'000};
};

struct AccessRecord {
  std::string uri;    // $request_uri
  std::string range;  // $http_range, "" when absent
  int status = 0;
  uint64_t bytes = 0;  // $body_bytes_sent
  uint64_t connection = 0;  // $connection: the same number for requests on one kept-alive connection
};

class NginxServer {
 public:
  // Writes the config, starts nginx and waits until its port accepts connections (retrying
  // on another port if it was taken meanwhile). The error names the config dir and quotes
  // nginx's error log.
  static absl::StatusOr<std::unique_ptr<NginxServer>> Start(const NginxOptions& options);
  ~NginxServer();  // Stop(), then removes its temp dir

  uint16_t Port() const { return port_; }
  std::string BaseUrl() const;  // "http://127.0.0.1:<port>"
  pid_t Pid() const { return process_->Pid(); }
  // SIGQUIT (graceful) by PID, SIGKILL if still running after 5 s. Idempotent.
  void Stop();

  // Every request logged so far, in order. nginx logs a request after answering it, so poll
  // (tests/testing/wait.h) when the count matters right after a response.
  std::vector<AccessRecord> AccessLog() const;
  std::string ErrorLog() const;

 private:
  NginxServer() = default;

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Subprocess> process_;
  uint16_t port_ = 0;
};

}  // namespace modelcache::testing
