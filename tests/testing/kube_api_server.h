#pragma once
// Runs tests/testing/kube_api_server.mjs (a Kubernetes API server for tests; what it keeps and
// what differs from a real one is at the top of that file) on 127.0.0.1 for a test: HTTPS with
// a test CA (client certificates of that CA are accepted too), bearer tokens from a token file
// the test can rewrite (rotation), state in a file so that Restart() carries on where Stop()
// left off, on the same port.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "kube/kube_client.h"
#include "kube/kube_config.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certificates.h"

namespace modelcache::testing {

struct KubeApiServerOptions {
  // Lines of the token file: "token,user,uid,\"group1,group2\"", and optionally
  // ",\"audience1,audience2\"" for a token bound to audiences (a projected ServiceAccount token;
  // without: the API server's own, kKubernetesAudience).
  std::vector<std::string> tokens = {"test-token,test-admin,uid-admin,\"system:masters\""};
  int history_window = 1000;          // watch events kept; older resourceVersions are 410
  int bookmark_interval_ms = 500;     // BOOKMARK events on watches that allow them
  bool tls = true;                    // false: plain HTTP
};

class KubeApiServer {
 public:
  static constexpr char kToken[] = "test-token";  // the default options' token
  static constexpr char kKubernetesAudience[] = "https://kubernetes.default.svc.cluster.local";

  // FAILED_PRECONDITION (tests skip) when node or the npm models are missing; otherwise
  // starts the server on a free port and waits until it answers.
  static absl::StatusOr<std::unique_ptr<KubeApiServer>> Start(KubeApiServerOptions options = {});
  ~KubeApiServer();  // stops the process by PID
  KubeApiServer(const KubeApiServer&) = delete;
  KubeApiServer& operator=(const KubeApiServer&) = delete;

  uint16_t Port() const { return port_; }
  std::string Server() const;  // "https://127.0.0.1:<port>"
  pid_t Pid() const;
  const TestCertificates& Certificates() const { return certificates_; }
  std::string CaFile() const { return certificates_.Path("ca.pem"); }

  // A client configuration for this server with `token` (the default token when empty).
  kube::KubeConfig Config(const std::string& token = kToken) const;
  // Writes a kubeconfig for this server and `token` into the server's temp dir; returns its path.
  std::string WriteKubeconfig(const std::string& token = kToken) const;

  // SIGTERM by PID and wait (a killed server, as far as its clients can tell).
  void Stop();
  // Starts it again on the same port with the saved state.
  absl::Status Restart();
  bool Running() const;

  // Replaces the token file's lines (the server re-reads it on the next request).
  absl::Status SetTokens(const std::vector<std::string>& lines);

  // Test endpoints (see the server file): everything stored that failed validation, every
  // request (method, path, verb, resource...), forgetting the watch history (forces 410),
  // cutting every watch stream, changing the configuration.
  absl::StatusOr<std::vector<nlohmann::json>> ValidationFailures() const;
  absl::StatusOr<std::vector<nlohmann::json>> Requests() const;
  absl::Status Compact() const;
  absl::StatusOr<int> DropWatches() const;
  absl::Status Configure(const nlohmann::json& settings) const;

  // Runs the real kubectl against this server (its kubeconfig, the default token) and returns
  // its stdout; the error quotes its stderr. FAILED_PRECONDITION when kubectl is not installed.
  absl::StatusOr<std::string> Kubectl(const std::vector<std::string>& args,
                                      std::chrono::seconds timeout = std::chrono::seconds(60)) const;

  std::string Log() const;  // the server's stderr: one line per request

 private:
  KubeApiServer() = default;
  absl::Status Launch(uint16_t port);
  absl::StatusOr<nlohmann::json> TestEndpoint(const std::string& method, const std::string& path,
                                              const nlohmann::json* body = nullptr) const;

  KubeApiServerOptions options_;
  std::unique_ptr<TempDir> dir_;
  TestCertificates certificates_;
  std::unique_ptr<Subprocess> process_;
  std::unique_ptr<kube::KubeClient> admin_;  // no token: the test endpoints need none
  uint16_t port_ = 0;
  int launches_ = 0;
  mutable std::atomic<int> kubectl_calls_{0};  // names each run's output files
};

// True when the real kubectl is on PATH.
bool KubectlInstalled();

// For a fixture's TearDown: every object the test wrote passed the npm models' validation
// (nothing to check when no server was started or it has stopped).
void ExpectObjectsValid(const KubeApiServer* server);

}  // namespace modelcache::testing
