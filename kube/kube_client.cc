#include "kube/kube_client.h"

#include <utility>

#include "common/status_format.h"
#include "common/status_macros.h"
#include "kube/kube_errors.h"
#include "kube/token_source.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::kube {
namespace {

using nlohmann::json;

constexpr char kJson[] = "application/json";
constexpr char kMergePatch[] = "application/merge-patch+json";
constexpr char kApplyPatch[] = "application/apply-patch+yaml";
constexpr size_t kMaxWatchLineBytes = 16u << 20;

std::string MetadataString(const json& object, const char* key) {
  auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  auto value = metadata->find(key);
  return value != metadata->end() && value->is_string() ? value->get<std::string>() : "";
}

void AddQuery(std::string& query, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  query += fmt::format("{}{}={}", query.empty() ? "" : "&", key, EncodeQueryValue(value));
}

absl::StatusOr<json> ParseObject(const HttpAnswer& answer, const RequestTarget& target) {
  json parsed = json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InternalError(fmt::format("kubernetes: {} {}: the answer is not JSON ({} bytes)", target.verb,
                                           target.resource != nullptr ? DescribeTarget(*target.resource, target.namespace_name, target.name)
                                                                      : std::string(target.path),
                                           answer.body.size()));
  }
  return parsed;
}

// One HTTP request of a verb, before it is sent.
struct Request {
  std::string method = "GET";
  std::string path;
  std::string query;
  std::string content_type;
  std::string body;
  RequestTarget target;
  std::string subresource;
  std::function<bool(std::string_view)> on_body;
  StopSignal* stop = nullptr;
  std::chrono::milliseconds timeout{0};  // 0: the client's request_timeout
};

}  // namespace

struct KubeClient::Impl {
  Impl(KubeConfig config_in, KubeClientOptions options_in)
      : config(std::move(config_in)),
        options(std::move(options_in)),
        transport(TlsSettings{config.certificate_authority_pem, config.insecure_skip_tls_verify,
                              config.client_certificate_pem, config.client_key_pem}) {
    if (!config.token_file.empty()) {
      tokens = TokenSource::FromFile(config.token_file);
    } else if (!config.token.empty()) {
      tokens = TokenSource::Fixed(config.token);
    }
  }

  void Record(const Request& request, long http_status) {
    if (!options.on_request) return;
    RequestRecord record;
    record.method = request.method;
    record.path = request.path;
    record.query = request.query;
    record.verb = std::string(request.target.verb);
    if (request.target.resource != nullptr) {
      record.api_group = request.target.resource->group;
      record.resource = request.target.resource->resource;
    }
    record.subresource = request.subresource;
    record.namespace_name = std::string(request.target.namespace_name);
    record.name = std::string(request.target.name);
    record.http_status = http_status;
    options.on_request(record);
  }

  // Sends the request; a 401 re-reads the token and, when it changed, sends it once more.
  absl::StatusOr<HttpAnswer> Send(const Request& request) {
    for (int attempt = 0;; ++attempt) {
      ASSIGN_OR_RETURN(std::string token, tokens.Current());
      HttpCall call;
      call.method = request.method;
      call.url = config.server + request.path + (request.query.empty() ? "" : "?" + request.query);
      call.headers.push_back(fmt::format("Accept: {}", kJson));
      call.headers.push_back(fmt::format("User-Agent: {}", options.user_agent));
      if (!request.content_type.empty()) call.headers.push_back(fmt::format("Content-Type: {}", request.content_type));
      if (!token.empty()) call.headers.push_back(fmt::format("Authorization: Bearer {}", token));
      call.body = request.body;
      call.on_body = request.on_body;
      call.timeout = request.timeout.count() > 0 ? request.timeout : options.request_timeout;
      absl::StatusOr<HttpAnswer> answer = transport.Perform(call, request.stop);
      Record(request, answer.ok() ? answer->status : 0);
      if (!answer.ok() || answer->status != 401 || attempt > 0) return answer;
      absl::StatusOr<bool> changed = tokens.Reload(token);
      if (!changed.ok() || !*changed) return answer;
    }
  }

  absl::StatusOr<json> SendForObject(const Request& request) {
    ASSIGN_OR_RETURN(HttpAnswer answer, Send(request));
    RETURN_IF_ERROR(StatusFromResponse(answer.status, answer.body, request.target));
    return ParseObject(answer, request.target);
  }

  std::string WriteQuery() const {
    std::string query;
    AddQuery(query, "fieldManager", options.field_manager);
    return query;
  }

  KubeConfig config;
  KubeClientOptions options;
  HttpTransport transport;
  TokenSource tokens;
};

KubeClient::KubeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KubeClient::~KubeClient() = default;

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(KubeConfig config, KubeClientOptions options) {
  if (config.server.empty()) return absl::InvalidArgumentError("kubernetes: the configuration has no server");
  return std::unique_ptr<KubeClient>(new KubeClient(std::make_unique<Impl>(std::move(config), std::move(options))));
}

const KubeConfig& KubeClient::config() const { return impl_->config; }

absl::StatusOr<json> KubeClient::Get(const Resource& resource, std::string_view namespace_name, std::string_view name) {
  Request request;
  request.target = {"get", &resource, namespace_name, name, {}};
  ASSIGN_OR_RETURN(request.path, ResourcePath(resource, namespace_name, name));
  if (name.empty()) return absl::InvalidArgumentError(fmt::format("kubernetes: get {}: no name", resource.QualifiedName()));
  return impl_->SendForObject(request);
}

absl::StatusOr<ListPage> KubeClient::List(const Resource& resource, std::string_view namespace_name,
                                          const ListOptions& options) {
  Request request;
  request.target = {"list", &resource, namespace_name, {}, {}};
  ASSIGN_OR_RETURN(request.path, ResourcePath(resource, namespace_name));
  AddQuery(request.query, "labelSelector", options.label_selector);
  AddQuery(request.query, "fieldSelector", options.field_selector);
  if (options.limit > 0) AddQuery(request.query, "limit", std::to_string(options.limit));
  AddQuery(request.query, "continue", options.continue_token);
  ASSIGN_OR_RETURN(json list, impl_->SendForObject(request));
  ListPage page;
  if (!list.is_object() || !list.contains("items") || !(list["items"].is_array() || list["items"].is_null())) {
    return absl::InternalError(fmt::format("kubernetes: list {}: the answer has no items",
                                           DescribeTarget(resource, namespace_name, {})));
  }
  if (list["items"].is_array()) {
    for (json& item : list["items"]) {
      // Items of a list carry no kind/apiVersion; give them theirs, as a get would.
      if (item.is_object()) {
        if (!item.contains("apiVersion")) item["apiVersion"] = resource.ApiVersion();
        if (!item.contains("kind")) item["kind"] = resource.kind;
      }
      page.items.push_back(std::move(item));
    }
  }
  page.resource_version = MetadataString(list, "resourceVersion");
  page.continue_token = MetadataString(list, "continue");
  return page;
}

absl::StatusOr<ListPage> KubeClient::ListAll(const Resource& resource, std::string_view namespace_name,
                                             ListOptions options) {
  bool restarted = false;
  bool midway = false;  // the continue token is one this call received
  ListPage all;
  for (;;) {
    absl::StatusOr<ListPage> page = List(resource, namespace_name, options);
    if (!page.ok() && IsGone(page.status()) && midway && !restarted) {
      // The snapshot the pages came from expired: start again from the first page.
      restarted = true;
      midway = false;
      all = ListPage();
      options.continue_token.clear();
      continue;
    }
    if (!page.ok()) return page.status();
    if (all.resource_version.empty()) all.resource_version = page->resource_version;
    for (json& item : page->items) all.items.push_back(std::move(item));
    if (page->continue_token.empty()) return all;
    options.continue_token = page->continue_token;
    midway = true;
  }
}

absl::StatusOr<json> KubeClient::Create(const Resource& resource, const json& object, std::string_view namespace_name) {
  std::string object_namespace = MetadataString(object, "namespace");
  if (resource.namespaced && !namespace_name.empty() && !object_namespace.empty() && object_namespace != namespace_name) {
    return absl::InvalidArgumentError(fmt::format("kubernetes: create {}: the object's namespace \"{}\" is not \"{}\"",
                                                  resource.QualifiedName(), object_namespace, namespace_name));
  }
  const std::string ns = object_namespace.empty() ? std::string(namespace_name) : object_namespace;
  const std::string name = MetadataString(object, "name");
  Request request;
  request.method = "POST";
  request.target = {"create", &resource, ns, name, {}};
  if (resource.namespaced && ns.empty()) {
    return absl::InvalidArgumentError(fmt::format("kubernetes: create {}: no namespace", DescribeTarget(resource, ns, name)));
  }
  ASSIGN_OR_RETURN(request.path, ResourcePath(resource, resource.namespaced ? std::string_view(ns) : std::string_view()));
  request.query = impl_->WriteQuery();
  request.content_type = kJson;
  json body = object;
  if (!body.contains("apiVersion")) body["apiVersion"] = resource.ApiVersion();
  if (!body.contains("kind")) body["kind"] = resource.kind;
  request.body = body.dump();
  return impl_->SendForObject(request);
}

absl::StatusOr<json> KubeClient::Update(const Resource& resource, const json& object, std::string_view subresource) {
  const std::string ns = MetadataString(object, "namespace");
  const std::string name = MetadataString(object, "name");
  if (name.empty()) {
    return absl::InvalidArgumentError(fmt::format("kubernetes: update {}: the object has no name", resource.QualifiedName()));
  }
  Request request;
  request.method = "PUT";
  request.target = {"update", &resource, ns, name, {}};
  request.subresource = std::string(subresource);
  ASSIGN_OR_RETURN(request.path, ResourcePath(resource, ns, name, subresource));
  request.query = impl_->WriteQuery();
  request.content_type = kJson;
  json body = object;
  if (!body.contains("apiVersion")) body["apiVersion"] = resource.ApiVersion();
  if (!body.contains("kind")) body["kind"] = resource.kind;
  request.body = body.dump();
  return impl_->SendForObject(request);
}

absl::StatusOr<json> KubeClient::MergePatch(const Resource& resource, std::string_view namespace_name,
                                            std::string_view name, const json& patch, std::string_view subresource) {
  Request request;
  request.method = "PATCH";
  request.target = {"patch", &resource, namespace_name, name, {}};
  request.subresource = std::string(subresource);
  ASSIGN_OR_RETURN(request.path, ResourcePath(resource, namespace_name, name, subresource));
  if (name.empty()) return absl::InvalidArgumentError(fmt::format("kubernetes: patch {}: no name", resource.QualifiedName()));
  request.query = impl_->WriteQuery();
  request.content_type = kMergePatch;
  request.body = patch.dump();
  return impl_->SendForObject(request);
}

absl::StatusOr<json> KubeClient::Apply(const Resource& resource, const json& object, bool force) {
  const std::string ns = MetadataString(object, "namespace");
  const std::string name = MetadataString(object, "name");
  if (name.empty()) {
    return absl::InvalidArgumentError(fmt::format("kubernetes: apply {}: the object has no name", resource.QualifiedName()));
  }
  Request request;
  request.method = "PATCH";
  request.target = {"patch", &resource, ns, name, {}};
  ASSIGN_OR_RETURN(request.path, ResourcePath(resource, ns, name));
  request.query = impl_->WriteQuery();
  if (force) AddQuery(request.query, "force", "true");
  request.content_type = kApplyPatch;
  json body = object;
  if (!body.contains("apiVersion")) body["apiVersion"] = resource.ApiVersion();
  if (!body.contains("kind")) body["kind"] = resource.kind;
  request.body = body.dump();  // JSON is YAML
  return impl_->SendForObject(request);
}

absl::StatusOr<json> KubeClient::Delete(const Resource& resource, std::string_view namespace_name, std::string_view name,
                                        const DeletePreconditions& preconditions) {
  Request request;
  request.method = "DELETE";
  request.target = {"delete", &resource, namespace_name, name, {}};
  ASSIGN_OR_RETURN(request.path, ResourcePath(resource, namespace_name, name));
  if (name.empty()) return absl::InvalidArgumentError(fmt::format("kubernetes: delete {}: no name", resource.QualifiedName()));
  json options = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}};
  if (!preconditions.uid.empty()) options["preconditions"]["uid"] = preconditions.uid;
  if (!preconditions.resource_version.empty()) {
    options["preconditions"]["resourceVersion"] = preconditions.resource_version;
  }
  request.content_type = kJson;
  request.body = options.dump();
  return impl_->SendForObject(request);
}

absl::StatusOr<json> KubeClient::ReadModifyWrite(const Resource& resource, std::string_view namespace_name,
                                                 std::string_view name,
                                                 const std::function<absl::StatusOr<bool>(json&)>& mutate,
                                                 int attempts) {
  absl::Status last = absl::OkStatus();
  for (int attempt = 0; attempt < std::max(attempts, 1); ++attempt) {
    ASSIGN_OR_RETURN(json object, Get(resource, namespace_name, name));
    ASSIGN_OR_RETURN(bool changed, mutate(object));
    if (!changed) return object;
    // The resourceVersion read is the precondition: a concurrent writer makes this ABORTED.
    absl::StatusOr<json> written = Update(resource, object);
    if (written.ok() || written.status().code() != absl::StatusCode::kAborted) return written;
    last = written.status();
  }
  return absl::AbortedError(fmt::format("kubernetes: {}: still conflicting after {} attempts: {}",
                                        DescribeTarget(resource, namespace_name, name), attempts, last.message()));
}

absl::Status KubeClient::Watch(const Resource& resource, std::string_view namespace_name, const WatchOptions& options,
                               const std::function<absl::Status(WatchEvent)>& on_event, StopSignal* stop) {
  Request request;
  request.target = {"watch", &resource, namespace_name, {}, {}};
  ASSIGN_OR_RETURN(request.path, ResourcePath(resource, namespace_name));
  AddQuery(request.query, "watch", "true");
  AddQuery(request.query, "labelSelector", options.label_selector);
  AddQuery(request.query, "fieldSelector", options.field_selector);
  AddQuery(request.query, "resourceVersion", options.resource_version);
  if (options.allow_bookmarks) AddQuery(request.query, "allowWatchBookmarks", "true");
  if (options.timeout.count() > 0) AddQuery(request.query, "timeoutSeconds", std::to_string(options.timeout.count()));
  request.stop = stop;
  // The server ends the stream at timeoutSeconds; this client-side limit only catches a
  // server that went silent without closing the connection.
  request.timeout = options.timeout.count() > 0 ? std::chrono::milliseconds(options.timeout + std::chrono::seconds(30))
                                                : std::chrono::milliseconds(0);
  absl::Status ended = absl::OkStatus();  // why the stream was ended from this side
  std::string pending;
  auto handle_line = [&](std::string_view line) -> bool {
    if (line.empty()) return true;
    json event = json::parse(line, nullptr, false);
    if (!event.is_object() || !event.contains("type") || !event["type"].is_string()) {
      ended = absl::UnavailableError(fmt::format("kubernetes: watch {}: not a watch event: {}",
                                                 DescribeTarget(resource, namespace_name, {}), line.substr(0, 200)));
      return false;
    }
    const std::string type = event["type"].get<std::string>();
    WatchEvent out;
    if (type == "ADDED") {
      out.type = WatchEventType::kAdded;
    } else if (type == "MODIFIED") {
      out.type = WatchEventType::kModified;
    } else if (type == "DELETED") {
      out.type = WatchEventType::kDeleted;
    } else if (type == "BOOKMARK") {
      out.type = WatchEventType::kBookmark;
    } else if (type == "ERROR") {
      ended = StatusFromWatchError(event.contains("object") ? event["object"].dump() : "{}", request.target);
      return false;
    } else {
      ended = absl::UnavailableError(fmt::format("kubernetes: watch {}: unknown event type \"{}\"",
                                                 DescribeTarget(resource, namespace_name, {}), type));
      return false;
    }
    out.object = std::move(event["object"]);
    if (out.object.is_object()) {
      if (!out.object.contains("apiVersion")) out.object["apiVersion"] = resource.ApiVersion();
      if (!out.object.contains("kind")) out.object["kind"] = resource.kind;
    }
    absl::Status handled = on_event(std::move(out));
    if (!handled.ok()) {
      ended = handled;
      return false;
    }
    return true;
  };
  request.on_body = [&](std::string_view chunk) -> bool {
    pending.append(chunk);
    size_t start = 0;
    for (size_t newline; (newline = pending.find('\n', start)) != std::string::npos; start = newline + 1) {
      if (!handle_line(std::string_view(pending).substr(start, newline - start))) return false;
    }
    pending.erase(0, start);
    if (pending.size() > kMaxWatchLineBytes) {
      ended = absl::ResourceExhaustedError(fmt::format("kubernetes: watch {}: an event over {} bytes",
                                                       DescribeTarget(resource, namespace_name, {}), kMaxWatchLineBytes));
      return false;
    }
    return true;
  };
  absl::StatusOr<HttpAnswer> answer = impl_->Send(request);
  if (!ended.ok()) return ended;
  if (!answer.ok()) return answer.status();
  RETURN_IF_ERROR(StatusFromResponse(answer->status, answer->body, request.target));
  if (!pending.empty() && !handle_line(pending)) return ended;
  return absl::OkStatus();
}

absl::StatusOr<json> KubeClient::Raw(std::string_view method, std::string_view path_and_query, const json* body) {
  Request request;
  request.method = std::string(method);
  const size_t question = path_and_query.find('?');
  request.path = std::string(path_and_query.substr(0, question));
  if (question != std::string_view::npos) request.query = std::string(path_and_query.substr(question + 1));
  request.target = {"", nullptr, {}, {}, path_and_query};
  if (body != nullptr) {
    request.content_type = kJson;
    request.body = body->dump();
  }
  return impl_->SendForObject(request);
}

}  // namespace modelcache::kube
