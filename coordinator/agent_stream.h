#pragma once
// The agents' Connect streams, on gRPC's callback API: no thread is parked per stream, so the
// number of agents is bounded by memory, not by a thread pool.
//
// gRPC's threads only move messages. One worker thread applies what agents send to the
// CoordinatorStore, each stream's messages in the order they were sent; usage reports that
// arrived from many streams meanwhile are stored in one transaction. A stream reads its next
// message only after the worker handled the last one, so at most one message per stream waits
// in memory and a slow database slows agents down through HTTP/2 flow control.
//
// Protocol (proto/modelcache/v1/coordinator.proto): the first message must be a hello; the
// coordinator answers with the caching policy and the volume's pending commands, then stores
// usage reports and command results. A node that connects again replaces its old stream,
// which is cancelled, and gets the commands the old one left unanswered (the agent answers an
// id it already ran with the stored result). When a node's stream ends, its unanswered
// commands go back to pending.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/clock.h"
#include "coordinator/db/store.h"
#include "modelcache/v1/coordinator.pb.h"

namespace grpc {
class CallbackServerContext;
template <class Request, class Response>
class ServerBidiReactor;
}  // namespace grpc

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace modelcache {

// Series the streams update; owned by the caller's registry, all required.
struct AgentStreamMetrics {
  prometheus::Gauge* agents_connected = nullptr;
  prometheus::Counter* usage_reports = nullptr;
  prometheus::Histogram* report_seconds = nullptr;  // from receipt to stored, queueing included
  prometheus::Counter* command_results = nullptr;
  prometheus::Counter* bytes_freed = nullptr;
};

class AgentStreams {
 public:
  using Reactor = grpc::ServerBidiReactor<v1::AgentMessage, v1::CoordinatorMessage>;

  // Starts the worker thread. `store`, `clock` and the metrics must outlive this object.
  AgentStreams(CoordinatorStore& store, const Clock& clock, AgentStreamMetrics metrics);
  ~AgentStreams();  // Stop()
  AgentStreams(const AgentStreams&) = delete;
  AgentStreams& operator=(const AgentStreams&) = delete;

  // The reactor for one Connect call; gRPC holds it until its OnDone. `principal` names the
  // caller in logs. A non-OK `refused` (authentication) finishes the call with it at once.
  Reactor* Open(grpc::CallbackServerContext* context, std::string principal,
                const absl::Status& refused);

  // Called on the worker thread after usage reports that changed something (not heartbeats)
  // were stored, with their volumes; e.g. to run the quota rule at once. Set before agents
  // connect; must not block for long (it delays the next reports).
  void OnUsageStored(std::function<void(const std::set<std::string>& volume_ids)> listener);

  // Sends the current caching policy to every connected agent.
  void BroadcastPolicy();
  // Hands each volume's pending commands to one connected agent of that volume.
  void DispatchAll();
  // Volumes that have a connected agent; only `volume_id` (if connected) when not empty.
  std::set<std::string> ConnectedVolumes(std::string_view volume_id);

  // First step of shutdown: refuses new streams and cancels the open ones. The worker keeps
  // running to finish them, which grpc::Server::Shutdown waits for.
  void CancelAll();
  // Joins the worker; call after the server has shut down. Idempotent.
  void Stop();

 private:
  class Session;
  struct Event;
  class Worker;

  void Forget(Session* session);
  std::shared_ptr<Session> Current(const std::string& node_name);
  std::shared_ptr<Session> ReplaceCurrent(const std::shared_ptr<Session>& session);
  bool RemoveIfCurrent(const std::shared_ptr<Session>& session);
  void SendPolicy(Session& session, const v1::CachingPolicy& policy);
  void Dispatch(Session& session);

  CoordinatorStore& store_;
  const Clock& clock_;
  const AgentStreamMetrics metrics_;

  std::mutex sessions_mutex_;  // guards the three members below
  bool refusing_ = false;
  std::set<Session*> open_;                                  // every stream until its OnDone
  std::map<std::string, std::shared_ptr<Session>> current_;  // by node name, after the hello

  std::function<void(const std::set<std::string>&)> on_usage_stored_;  // set before agents connect
  std::unique_ptr<Worker> worker_;
};

}  // namespace modelcache
