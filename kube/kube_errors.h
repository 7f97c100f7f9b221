#pragma once
// What an API server's answer means, as an absl::Status. Every error names the request (verb,
// resource, namespace, name) and carries the Kubernetes Status object's message:
//
//   401       UNAUTHENTICATED    credentials refused (the client re-reads a token file once)
//   403       PERMISSION_DENIED  "forbidden to <verb> <resource> in namespace <ns>": an RBAC
//                                rule is missing, and the message says which one
//   404       NOT_FOUND
//   409       ALREADY_EXISTS     a create of a name that exists (reason AlreadyExists)
//             ABORTED            any other conflict: a stale resourceVersion on update, a
//                                delete precondition, an apply conflict: re-read and retry
//   410       OUT_OF_RANGE       resourceVersion too old or continue token expired: relist
//   400, 422  INVALID_ARGUMENT   names each field from the Status' details.causes
//   405       UNIMPLEMENTED      the resource does not support the verb
//   429, 5xx  UNAVAILABLE        try again later (a transport failure is UNAVAILABLE too)
//
// The HTTP status rides along as a payload, so callers can tell a 410 from other errors
// without parsing messages.
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "kube/resource.h"

namespace modelcache::kube {

// The request an answer belongs to: "create" persistentvolumeclaims "data" in "team-a".
struct RequestTarget {
  std::string_view verb;  // Kubernetes verb: get, list, watch, create, update, patch, delete
  const Resource* resource = nullptr;
  std::string_view namespace_name;
  std::string_view name;
  std::string_view path;  // for requests without a resource (discovery, /version)
};

// OK for 2xx; otherwise the error above. `body` is the response body (a Status object when
// the server sent one; otherwise its start is quoted).
absl::Status StatusFromResponse(long http_status, std::string_view body, const RequestTarget& target);

// The error for a Status object that arrived inside a watch stream (an ERROR event): the same
// mapping, by its `code` field.
absl::Status StatusFromWatchError(std::string_view status_json, const RequestTarget& target);

// The HTTP status an error was made from; nullopt for errors that did not come from an
// answer (transport failures, bad arguments).
std::optional<long> HttpStatusOf(const absl::Status& status);

// 410 Gone: the resourceVersion is older than the server keeps. Relist.
bool IsGone(const absl::Status& status);

}  // namespace modelcache::kube
