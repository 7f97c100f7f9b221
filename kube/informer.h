#pragma once
// A cache of one resource kind (optionally one namespace and selectors) kept current by a
// watch, with a callback interface: the "informer" of Kubernetes clients.
//
// It lists, then watches from the list's resourceVersion with bookmarks; on 410 Gone or a
// dropped stream it relists and resyncs: objects that vanished meanwhile are reported as
// deleted, so the consumer learns what to drop. Errors back off with jitter
// (kube/watch_policy.h); an API server that is down costs one attempt per backoff, never a
// busy loop. The cache keeps the last known objects while the server is unreachable.
//
// Threads: the informer's HTTP requests run on one thread of its own, so no caller's thread is
// ever blocked. Handler callbacks run on that thread, or, when `deliver` is given, wherever it
// sends them (pass the daemon's loop Post() to get them on the loop thread). Callbacks arrive
// one at a time, in order; a delivered callback refers to the handler, not to the informer, so
// the handler must outlive the tasks posted for it. Stop() ends a request in flight at once and
// joins the thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "common/clock.h"
#include "kube/kube_client.h"
#include "kube/watch_policy.h"

namespace modelcache::kube {

class InformerHandler {
 public:
  virtual ~InformerHandler() = default;
  virtual void OnAdded(const nlohmann::json& object) = 0;
  virtual void OnModified(const nlohmann::json& before, const nlohmann::json& object) = 0;
  // The object is gone: deleted, out of the selection, or not listed any more at a resync
  // (then `last_known` is the cached copy).
  virtual void OnDeleted(const nlohmann::json& last_known) = 0;
  // After each complete list (the first one and every relist): the cache equals the server.
  virtual void OnSynced() {}
  // A list or watch failed; the informer has logged it and will retry after `retry_in`.
  virtual void OnTrouble(const absl::Status& error, std::chrono::milliseconds retry_in) {}
};

struct InformerOptions {
  std::string namespace_name;  // "" : all namespaces (or a cluster-scoped resource)
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;
  std::chrono::seconds watch_timeout{300};  // the server ends each watch after this
  BackoffPolicy backoff;
  // Where callbacks run; empty: on the informer's thread. Must run tasks in posting order.
  std::function<void(std::function<void()>)> deliver;
  uint64_t random_seed = 0;  // 0: from std::random_device
};

struct InformerStats {
  int64_t lists = 0;         // list attempts
  int64_t watches = 0;       // watch attempts
  int64_t relists = 0;       // lists after the first successful one
  int64_t failures = 0;      // failed lists and watches (410 included)
  int64_t events = 0;        // watch events applied (bookmarks excluded)
  int64_t bookmarks = 0;
};

class Informer {
 public:
  // `client`, `handler` and `clock` must outlive the informer.
  Informer(KubeClient& client, Resource resource, InformerOptions options, InformerHandler& handler, const Clock& clock);
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();  // starts the thread; once
  void Stop();   // idempotent; prompt (ends a request in flight) and joins

  // True once a first list has completed.
  bool Synced() const;
  // Copies from the cache (thread-safe). Keys as kube::ObjectKey: "namespace/name" or "name".
  std::vector<nlohmann::json> List() const;
  std::optional<nlohmann::json> Get(const std::string& key) const;
  // The resourceVersion the next watch starts from.
  std::string ResourceVersion() const;
  InformerStats Stats() const;

 private:
  void Run();
  absl::Status ListAndResync();
  absl::Status WatchOnce(int& events);
  void Deliver(std::function<void()> task);
  double RandomUnit();

  KubeClient& client_;
  const Resource resource_;
  const InformerOptions options_;
  InformerHandler& handler_;
  const Clock& clock_;
  StopSignal stop_;
  std::thread thread_;
  std::atomic<bool> synced_{false};
  uint64_t random_state_;  // the informer thread's own

  mutable std::mutex mutex_;  // guards cache_, resource_version_, stats_
  std::map<std::string, nlohmann::json> cache_;
  std::string resource_version_;
  InformerStats stats_;
};

}  // namespace modelcache::kube
