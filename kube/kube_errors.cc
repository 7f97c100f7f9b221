#include "kube/kube_errors.h"

#include <nlohmann/json.hpp>

#include <vector>

#include "absl/strings/cord.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::kube {
namespace {

constexpr char kHttpStatusPayload[] = "type.googleapis.com/modelcache.kube.HttpStatus";
constexpr size_t kQuotedBodyBytes = 300;

// The parts of a metav1.Status the mapping uses.
struct StatusObject {
  std::string message;
  std::string reason;
  std::vector<std::string> causes;  // "spec.nfs.path: Required value"
};

std::string StringField(const nlohmann::json& object, const char* key) {
  auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : std::string();
}

StatusObject ParseStatus(std::string_view body) {
  StatusObject status;
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && StringField(parsed, "kind") == "Status") {
    status.message = StringField(parsed, "message");
    status.reason = StringField(parsed, "reason");
    auto details = parsed.find("details");
    if (details != parsed.end() && details->is_object()) {
      auto causes = details->find("causes");
      if (causes != details->end() && causes->is_array()) {
        for (const auto& cause : *causes) {
          if (!cause.is_object()) continue;
          const std::string field = StringField(cause, "field");
          const std::string message = StringField(cause, "message");
          status.causes.push_back(field.empty() ? message : fmt::format("{}: {}", field, message));
        }
      }
    }
    return status;
  }
  // Not a Status object (a proxy's page, plain text): quote its start.
  std::string text(body.substr(0, kQuotedBodyBytes));
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  status.message = body.size() > kQuotedBodyBytes ? text + "..." : text;
  return status;
}

std::string Where(const RequestTarget& target) {
  if (target.resource == nullptr) return std::string(target.path.empty() ? "(no resource)" : target.path);
  return DescribeTarget(*target.resource, target.namespace_name, target.name);
}

absl::Status WithHttpStatus(absl::Status status, long http_status) {
  status.SetPayload(kHttpStatusPayload, absl::Cord(std::to_string(http_status)));
  return status;
}

absl::Status Map(long http_status, const StatusObject& answer, const RequestTarget& target) {
  const std::string prefix = target.verb.empty() ? fmt::format("kubernetes: {}", Where(target))
                                                 : fmt::format("kubernetes: {} {}", target.verb, Where(target));
  const std::string message = answer.message.empty() ? "(no message)" : answer.message;
  absl::Status status;
  switch (http_status) {
    case 401:
      status = absl::UnauthenticatedError(fmt::format(
          "{}: 401 Unauthorized (the API server refused the credentials: an expired or rotated token, "
          "or a client certificate it does not trust): {}", prefix, message));
      break;
    case 403: {
      std::string rule = "(no resource)";
      if (target.resource != nullptr) {
        rule = fmt::format("apiGroups: [\"{}\"], resources: [\"{}\"], verbs: [\"{}\"]", target.resource->group,
                           target.resource->resource, target.verb);
      }
      std::string scope = "cluster-wide";
      if (target.resource != nullptr && target.resource->namespaced) {
        scope = target.namespace_name.empty() ? "in all namespaces"
                                              : fmt::format("in namespace \"{}\"", target.namespace_name);
      }
      status = absl::PermissionDeniedError(fmt::format(
          "{}: 403 Forbidden: this identity may not {} {} {} (missing RBAC rule? {}): {}", prefix, target.verb,
          target.resource != nullptr ? target.resource->QualifiedName() : "?", scope, rule, message));
      break;
    }
    case 404:
      status = absl::NotFoundError(fmt::format("{}: 404 Not Found: {}", prefix, message));
      break;
    case 409:
      if (answer.reason == "AlreadyExists") {
        status = absl::AlreadyExistsError(fmt::format("{}: 409 AlreadyExists: {}", prefix, message));
      } else {
        std::string fields;
        for (const std::string& cause : answer.causes) {
          // Servers often list the causes in the message already.
          const std::string field = cause.substr(0, cause.find(':'));
          if (message.find(field) == std::string::npos) fields += fmt::format("; {}", cause);
        }
        status = absl::AbortedError(fmt::format(
            "{}: 409 Conflict (the object changed since it was read, or a precondition failed; re-read and "
            "retry): {}{}", prefix, message, fields));
      }
      break;
    case 410:
      status = absl::OutOfRangeError(fmt::format(
          "{}: 410 Gone (the resourceVersion or continue token is older than the server keeps; relist): {}",
          prefix, message));
      break;
    case 400:
    case 422: {
      std::string fields;
      for (const std::string& cause : answer.causes) fields += (fields.empty() ? "" : "; ") + cause;
      status = absl::InvalidArgumentError(fmt::format(
          "{}: {} {}: {}{}{}", prefix, http_status, http_status == 422 ? "Invalid" : "Bad Request",
          fields.empty() ? "" : "field ", fields, fields.empty() ? message : fmt::format(" ({})", message)));
      break;
    }
    case 405:
      status = absl::UnimplementedError(fmt::format(
          "{}: 405 Method Not Allowed (the resource does not support this verb): {}", prefix, message));
      break;
    default:
      status = absl::UnavailableError(fmt::format("{}: HTTP {}{}: {}", prefix, http_status,
                                                  answer.reason.empty() ? "" : " " + answer.reason, message));
      break;
  }
  return WithHttpStatus(std::move(status), http_status);
}

}  // namespace

absl::Status StatusFromResponse(long http_status, std::string_view body, const RequestTarget& target) {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  return Map(http_status, ParseStatus(body), target);
}

absl::Status StatusFromWatchError(std::string_view status_json, const RequestTarget& target) {
  nlohmann::json parsed = nlohmann::json::parse(status_json, nullptr, false);
  long code = 500;
  if (parsed.is_object()) {
    auto found = parsed.find("code");
    if (found != parsed.end() && found->is_number_integer()) code = found->get<long>();
  }
  // An ERROR event without a usable code is the server's trouble: retry.
  if (code >= 200 && code < 300) code = 500;
  return Map(code, ParseStatus(status_json), target);
}

std::optional<long> HttpStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kHttpStatusPayload);
  if (!payload.has_value()) return std::nullopt;
  try {
    return std::stol(std::string(*payload));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool IsGone(const absl::Status& status) { return HttpStatusOf(status) == 410; }

}  // namespace modelcache::kube
