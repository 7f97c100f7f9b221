#pragma once
// A small Kubernetes API client: get, list (pages, selectors), create, update, merge-patch,
// server-side apply, delete with preconditions, watch, and a read-modify-write helper. Objects
// are nlohmann::json as the API sends them. Errors: kube/kube_errors.h.
//
// Every call blocks its thread for one HTTP round trip (a watch for as long as it streams):
// call from worker threads or kube/informer.h's thread, never from a gRPC handler or a loop.
// Thread-safe. A 401 makes the client re-read a token file and, if the token changed, retry
// once (bound ServiceAccount tokens rotate).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "kube/http_transport.h"
#include "kube/kube_config.h"
#include "kube/resource.h"

namespace modelcache::kube {

// One request, as sent and answered: for a test that compares what the client did with the
// RBAC rules in deploy/.
struct RequestRecord {
  std::string method;  // GET, POST, PUT, PATCH, DELETE
  std::string path;    // "/api/v1/namespaces/a/persistentvolumeclaims/data" (no query)
  std::string query;   // "labelSelector=...&limit=500", "" when none
  std::string verb;    // Kubernetes verb: get, list, watch, create, update, patch, delete; "" for raw
  std::string api_group;
  std::string resource;  // plural; "" for raw requests
  std::string subresource;
  std::string namespace_name;
  std::string name;
  long http_status = 0;  // 0: no answer (transport failure)
};

struct KubeClientOptions {
  std::string field_manager = "modelcache";  // server-side apply and every write
  std::string user_agent = "modelcache";
  std::chrono::milliseconds request_timeout{30'000};
  // Called after every request (on the calling thread, so possibly several at once); a hook,
  // not a global. Empty: nothing recorded.
  std::function<void(const RequestRecord&)> on_request;
};

struct ListOptions {
  std::string label_selector;  // "app=x,tier in (a,b)"
  std::string field_selector;  // "spec.nodeName=node-1"
  int64_t limit = 0;           // page size; 0: the server's choice (usually everything)
  std::string continue_token;
};

struct ListPage {
  std::vector<nlohmann::json> items;
  std::string resource_version;  // of the list, to watch from
  std::string continue_token;    // "" on the last page
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;  // watch from here (a list's resourceVersion)
  bool allow_bookmarks = true;
  // Asks the server to end the stream after this long (a clean end; watch again).
  std::chrono::seconds timeout{300};
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  nlohmann::json object;
};

struct DeletePreconditions {
  std::string uid;               // delete only this incarnation of the name
  std::string resource_version;  // delete only if unchanged since read
};

class KubeClient {
 public:
  // INVALID_ARGUMENT for a config without a server.
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(KubeConfig config, KubeClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  const KubeConfig& config() const;

  // `namespace_name` is "" for cluster-scoped resources (and for a list in all namespaces).
  absl::StatusOr<nlohmann::json> Get(const Resource& resource, std::string_view namespace_name, std::string_view name);
  absl::StatusOr<ListPage> List(const Resource& resource, std::string_view namespace_name, const ListOptions& options);
  // Every page, from options.continue_token (usually ""). The result's resource_version is the
  // first page's. When a continue token this call received expires midway (410), the list
  // starts again from the first page, once; an expired token given by the caller is an error.
  absl::StatusOr<ListPage> ListAll(const Resource& resource, std::string_view namespace_name, ListOptions options);

  // The namespace comes from the object's metadata (or `namespace_name` when it has none; they
  // must agree). Returns the object as stored (uid, resourceVersion...). ALREADY_EXISTS for a
  // taken name.
  absl::StatusOr<nlohmann::json> Create(const Resource& resource, const nlohmann::json& object,
                                        std::string_view namespace_name = {});
  // PUT of the whole object (or its `subresource`, e.g. "status"). With metadata.resourceVersion
  // set, ABORTED when the object changed since it was read.
  absl::StatusOr<nlohmann::json> Update(const Resource& resource, const nlohmann::json& object,
                                        std::string_view subresource = {});
  // RFC 7386 JSON merge patch (application/merge-patch+json). A metadata.resourceVersion in the
  // patch is a precondition (ABORTED on mismatch).
  absl::StatusOr<nlohmann::json> MergePatch(const Resource& resource, std::string_view namespace_name,
                                            std::string_view name, const nlohmann::json& patch,
                                            std::string_view subresource = {});
  // Server-side apply of `object` (application/apply-patch+yaml, fieldManager from the options).
  // `force` takes over fields another manager owns; without it such fields are ABORTED (409).
  absl::StatusOr<nlohmann::json> Apply(const Resource& resource, const nlohmann::json& object, bool force);
  // Returns what the server answered (the object, with deletionTimestamp when finalizers hold
  // it, or a Status). ABORTED when a precondition does not hold; NOT_FOUND when already gone.
  absl::StatusOr<nlohmann::json> Delete(const Resource& resource, std::string_view namespace_name,
                                        std::string_view name, const DeletePreconditions& preconditions = {});

  // Gets the object, lets `mutate` change it, and writes it back with its resourceVersion;
  // on a conflict (ABORTED) reads again and repeats, up to `attempts` times. `mutate` returns
  // false when nothing needs to change (then nothing is written and the read object is
  // returned), or an error to give up with.
  absl::StatusOr<nlohmann::json> ReadModifyWrite(const Resource& resource, std::string_view namespace_name,
                                                 std::string_view name,
                                                 const std::function<absl::StatusOr<bool>(nlohmann::json&)>& mutate,
                                                 int attempts = 5);

  // Streams watch events to `on_event` until the server ends the stream (OK), `stop` is
  // stopped (CANCELLED), `on_event` returns an error (that error), the server sends an ERROR
  // event (its error: OUT_OF_RANGE with HTTP status 410 when the resourceVersion is too old) or
  // the connection fails (UNAVAILABLE). Bookmarks are passed on (type kBookmark).
  absl::Status Watch(const Resource& resource, std::string_view namespace_name, const WatchOptions& options,
                     const std::function<absl::Status(WatchEvent)>& on_event, StopSignal* stop);

  // A request to any path ("/version", "/apis"), for discovery and tests. Errors as above.
  absl::StatusOr<nlohmann::json> Raw(std::string_view method, std::string_view path_and_query,
                                     const nlohmann::json* body = nullptr);

 private:
  struct Impl;
  explicit KubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache::kube
