#pragma once
// The whole agent, built from an AgentConfig: the event loop, the ModelCache on the cache
// volume, the gRPC server (Unix socket, optional TCP) and the metrics/health HTTP server.
// Tests can run it in-process; main.cc only parses the config and calls RunAgent.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/config.h"

namespace modelcache {

class AgentServer {
 public:
  // Checks the cache folder's filesystem type (storage_check.h). Refused (a tmpfs, FUSE, ...
  // without modelsCacheStorage.bypassStorageCheck): logs an ERROR and serves without a cache,
  // every Ensure answering FAILED_PRECONDITION ("cache refused: tmpfs at /cache ...") so that
  // clients download on their own; /readyz stays 200 in that state on purpose, since a pod
  // can only fall back after it reached the agent. Otherwise opens the cache (a blocking
  // volume scan), gives it and each of extraVolumes a volume id, then serves Agent and
  // Maintenance (and starts the scrub thread when configured). The socket's folder is
  // created, a stale socket file is replaced (FAILED_PRECONDITION if another agent answers
  // on it) and the socket is made 0666 so pods of any uid can connect.
  static absl::StatusOr<std::unique_ptr<AgentServer>> Start(const AgentConfig& config);
  ~AgentServer();  // Shutdown()

  // Graceful and idempotent: /readyz turns 503, the gRPC server stops accepting and cancels
  // streams still open after a short grace period (their fills keep their staging journal and
  // resume on the next start), then the cache and the loop stop.
  void Shutdown();

  int TcpPort() const;      // the bound port of listenTcp (0 when not listening on TCP)
  int MetricsPort() const;  // 0 when metricsAddress is ""
  bool Ready() const;

 private:
  struct Parts;
  explicit AgentServer(std::unique_ptr<Parts> parts);
  static absl::StatusOr<std::unique_ptr<AgentServer>> StartRefusing(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// Blocks SIGTERM and SIGINT (call before any thread starts), starts the agent, waits for one of
// them, shuts down. Returns the start error, if any.
absl::Status RunAgentUntilSignal(const AgentConfig& config);

}  // namespace modelcache
