#pragma once
// The agent's side of the coordinator stream: one long-lived Connect call that sends a hello,
// the full usage on every (re)connect, then deltas and heartbeats; runs the coordinator's
// commands through LocalCacheOps and answers each with its result. Reconnects with
// exponential backoff and jitter. Commands are deduplicated by id: a command the coordinator
// re-sends after a reconnect (or, with a durable CommandAnswers, after an agent restart) gets
// the stored answer instead of running again.
// The agent keeps serving while the coordinator is away; this class only reports and obeys.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/coordination/local_cache_ops.h"
#include "kube/token_source.h"
#include "modelcache/v1/coordinator.pb.h"

namespace modelcache {

class CommandAnswers;

struct CoordinatorClientOptions;
// The token to send now: the token file's current contents, else `token`.
std::string CoordinatorBearerToken(const CoordinatorClientOptions& options);

struct CoordinatorClientOptions {
  std::string target;  // host:port
  std::string token;   // bearer token (role agent); empty: none sent
  // coordinatorTokenFile, read again whenever it changes (the kubelet rotates projected
  // ServiceAccount tokens); `token` is its contents at start, used while the file cannot be read.
  std::shared_ptr<kube::TokenSource> token_file;
  std::string node_name;
  std::string volume_id;
  std::string agent_version;
  // TLS: PEM contents. Empty root_certs and tls=false: plaintext.
  bool tls = false;
  std::string root_certs;
  std::string client_cert;
  std::string client_key;
  std::chrono::milliseconds report_interval{10000};
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{30000};
  size_t remembered_results = 4096;  // command answers kept for deduplication
  // Where answers are remembered (agent/coordination/command_answers.h); with a file, a command re-sent
  // after this agent restarted is answered from the record too. Null: in memory, holding
  // remembered_results. Must outlive the client.
  CommandAnswers* answers = nullptr;
  // Called on the client's thread after a purge command freed a model (not for a replayed
  // answer), with the command's reason ("unused: ...") and the bytes freed. For metrics.
  std::function<void(std::string_view reason, uint64_t bytes_freed)> on_purged;
};

class CoordinatorClient {
 public:
  // Does not connect yet; `ops` must outlive the client.
  CoordinatorClient(CoordinatorClientOptions options, LocalCacheOps& ops);
  ~CoordinatorClient();  // Stop()
  CoordinatorClient(const CoordinatorClient&) = delete;
  CoordinatorClient& operator=(const CoordinatorClient&) = delete;

  void Start();
  // Ends the stream and joins the threads. Idempotent.
  void Stop();
  // Sends a delta now instead of at the next interval (after a fill or a purge).
  void ReportNow();

  // True once the coordinator answered on the current stream.
  bool Connected() const;
  // Streams that reached the coordinator since Start (for tests and metrics).
  uint64_t Connections() const;
  // Commands run (not counting answers replayed for duplicates).
  uint64_t CommandsExecuted() const;
  // Unix seconds (system clock) of the last usage report written to the stream; 0: never.
  int64_t LastReportUnixSeconds() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache
