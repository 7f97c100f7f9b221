// kube/kube_errors.h: what each answer of an API server means, and that every error names
// the request and quotes the server's Status message.
#include "kube/kube_errors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelcache::kube {
namespace {

using ::testing::HasSubstr;

std::string StatusJson(int code, const std::string& reason, const std::string& message, const std::string& causes = "") {
  std::string details = causes.empty() ? "" : ",\"details\":{\"name\":\"x\",\"causes\":[" + causes + "]}";
  return "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"" + message +
         "\",\"reason\":\"" + reason + "\",\"code\":" + std::to_string(code) + details + "}";
}

TEST(KubeErrors, SuccessIsOk) {
  EXPECT_TRUE(StatusFromResponse(200, "{}", {"get", &Pods(), "a", "p", {}}).ok());
  EXPECT_TRUE(StatusFromResponse(201, "{}", {"create", &Pods(), "a", "p", {}}).ok());
}

TEST(KubeErrors, ForbiddenNamesVerbResourceNamespaceAndTheRuleToAdd) {
  const absl::Status status = StatusFromResponse(
      403, StatusJson(403, "Forbidden", "persistentvolumeclaims is forbidden: User \\\"system:serviceaccount:m:c\\\" cannot create"),
      {"create", &PersistentVolumeClaims(), "team-a", "data", {}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("may not create persistentvolumeclaims in namespace \"team-a\""));
  EXPECT_THAT(message, HasSubstr("resources: [\"persistentvolumeclaims\"], verbs: [\"create\"]"));
  EXPECT_THAT(message, HasSubstr("User \"system:serviceaccount:m:c\" cannot create")) << "the server's message";
  const absl::Status cluster = StatusFromResponse(403, StatusJson(403, "Forbidden", "no"),
                                                  {"list", &PersistentVolumes(), "", "", {}});
  EXPECT_THAT(std::string(cluster.message()), HasSubstr("may not list persistentvolumes cluster-wide"));
  const absl::Status grouped = StatusFromResponse(403, StatusJson(403, "Forbidden", "no"),
                                                  {"patch", &MutatingWebhookConfigurations(), "", "w", {}});
  EXPECT_THAT(std::string(grouped.message()), HasSubstr("apiGroups: [\"admissionregistration.k8s.io\"]"));
}

TEST(KubeErrors, UnauthorizedNotFoundAndUnavailable) {
  const absl::Status unauthorized = StatusFromResponse(401, StatusJson(401, "Unauthorized", "Unauthorized"),
                                                       {"get", &Namespaces(), "", "x", {}});
  EXPECT_EQ(unauthorized.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(unauthorized.message()), HasSubstr("get namespaces \"x\" (cluster-scoped): 401"));
  const absl::Status missing = StatusFromResponse(404, StatusJson(404, "NotFound", "pods \\\"p\\\" not found"),
                                                  {"get", &Pods(), "a", "p", {}});
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("pods \"p\" not found"));
  const absl::Status busy = StatusFromResponse(503, "<html>upstream connect error</html>", {"list", &Pods(), "", "", {}});
  EXPECT_EQ(busy.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(busy.message()), HasSubstr("upstream connect error")) << "a body that is not a Status is quoted";
  EXPECT_THAT(std::string(busy.message()), HasSubstr("pods in all namespaces"));
  EXPECT_EQ(HttpStatusOf(busy), 503);
  EXPECT_EQ(HttpStatusOf(absl::UnavailableError("connect refused")), std::nullopt);
}

TEST(KubeErrors, ConflictOnCreateIsExistsOtherwiseRetry) {
  const absl::Status exists = StatusFromResponse(
      409, StatusJson(409, "AlreadyExists", "persistentvolumes \\\"pv\\\" already exists"),
      {"create", &PersistentVolumes(), "", "pv", {}});
  EXPECT_EQ(exists.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(exists.message()), HasSubstr("already exists"));
  const absl::Status stale = StatusFromResponse(
      409, StatusJson(409, "Conflict", "the object has been modified; please apply your changes to the latest version"),
      {"update", &PersistentVolumes(), "", "pv", {}});
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(stale.message()), HasSubstr("re-read and retry"));
  EXPECT_THAT(std::string(stale.message()), HasSubstr("has been modified"));
  const absl::Status apply = StatusFromResponse(
      409, StatusJson(409, "Conflict", "Apply failed with 1 conflict",
                      "{\"reason\":\"FieldManagerConflict\",\"message\":\"conflict with \\\"other\\\"\",\"field\":\".spec.capacity.storage\"}"),
      {"patch", &PersistentVolumes(), "", "pv", {}});
  EXPECT_EQ(apply.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(apply.message()), HasSubstr(".spec.capacity.storage: conflict with \"other\""));
}

TEST(KubeErrors, GoneIsOutOfRangeAndRecognisable) {
  const absl::Status gone = StatusFromResponse(410, StatusJson(410, "Expired", "The provided continue parameter is too old"),
                                               {"list", &Pods(), "a", "", {}});
  EXPECT_EQ(gone.code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(IsGone(gone));
  EXPECT_THAT(std::string(gone.message()), HasSubstr("relist"));
  EXPECT_FALSE(IsGone(absl::OutOfRangeError("not from a server")));
  const absl::Status event = StatusFromWatchError(StatusJson(410, "Expired", "too old resource version: 5 (9)"),
                                                  {"watch", &Pods(), "", "", {}});
  EXPECT_TRUE(IsGone(event));
  EXPECT_THAT(std::string(event.message()), HasSubstr("too old resource version"));
  const absl::Status odd = StatusFromWatchError("{\"kind\":\"Status\"}", {"watch", &Pods(), "", "", {}});
  EXPECT_EQ(odd.code(), absl::StatusCode::kUnavailable) << "an ERROR event without a code is retried";
}

TEST(KubeErrors, InvalidNamesEveryFieldFromTheCauses) {
  const absl::Status status = StatusFromResponse(
      422, StatusJson(422, "Invalid", "PersistentVolume \\\"pv\\\" is invalid",
                      "{\"reason\":\"FieldValueRequired\",\"message\":\"Required value\",\"field\":\"spec.nfs.path\"},"
                      "{\"reason\":\"FieldValueInvalid\",\"message\":\"unknown field\",\"field\":\"spec.bogus\"}"),
      {"create", &PersistentVolumes(), "", "pv", {}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("field spec.nfs.path: Required value; spec.bogus: unknown field"));
  EXPECT_THAT(message, HasSubstr("is invalid"));
  EXPECT_THAT(message, HasSubstr("create persistentvolumes \"pv\""));
}

}  // namespace
}  // namespace modelcache::kube
