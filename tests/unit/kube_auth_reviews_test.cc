// coordinator/kube_auth/: the review requests and what their answers mean, the cache of
// accepted answers on a fake clock, and the kubernetesAuth configuration block.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "coordinator/config.h"
#include "coordinator/kube_auth/kube_auth_config.h"
#include "coordinator/kube_auth/review_cache.h"
#include "coordinator/kube_auth/reviews.h"
#include "tests/testing/fake_clock.h"

namespace modelcache::kube_auth {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

json Authenticated(const std::string& user, json audiences) {
  return {{"status", {{"authenticated", true},
                      {"user", {{"username", user}, {"uid", "u1"}, {"groups", {"g1", "g2"}}}},
                      {"audiences", std::move(audiences)}}}};
}

TEST(KubeAuthReviews, TokenReviewAsksForTheAudienceOnlyWhenGiven) {
  EXPECT_EQ(TokenReviewRequest("t", "modelcache")["spec"]["audiences"], json::array({"modelcache"}));
  EXPECT_FALSE(TokenReviewRequest("t", "")["spec"].contains("audiences"));
  EXPECT_EQ(TokenReviewRequest("t", "")["kind"], "TokenReview");
}

TEST(KubeAuthReviews, AnAuthenticatedTokenNamesItsUserAndGroups) {
  auto identity = ReadTokenReview(Authenticated("alice", json::array({"modelcache"})), "modelcache");
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->username, "alice");
  EXPECT_EQ(identity->groups, (std::vector<std::string>{"g1", "g2"}));
  EXPECT_TRUE(identity->audience_bound);
  auto user = ReadTokenReview(Authenticated("alice", json::array({"https://kubernetes.default.svc"})), "");
  ASSERT_TRUE(user.ok());
  EXPECT_FALSE(user->audience_bound);
}

TEST(KubeAuthReviews, AnAnswerWithoutTheAudienceIsNoAgentToken) {
  // A server that ignored spec.audiences must not let any token pass as an agent's.
  auto identity = ReadTokenReview(Authenticated("x", json::array({"other"})), "modelcache");
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(identity.status().message()), HasSubstr("does not carry the audience \"modelcache\""));
}

TEST(KubeAuthReviews, AnUnauthenticatedTokenCarriesTheReviewsError) {
  auto identity = ReadTokenReview({{"status", {{"authenticated", false}, {"error", "token expired"}}}}, "modelcache");
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(identity.status().message()), HasSubstr("token expired"));
  EXPECT_EQ(ReadTokenReview(json::object(), "").status().code(), absl::StatusCode::kInternal);
}

TEST(KubeAuthReviews, EachPermissionMapsToOneVerbAndTheLeastRoleGrantingIt) {
  EXPECT_EQ(VerbFor(Permission::kRead), "get");
  EXPECT_EQ(VerbFor(Permission::kMaintain), "update");
  EXPECT_EQ(VerbFor(Permission::kLease), "lease");
  EXPECT_EQ(VerbFor(Permission::kAdmin), "delete");
  EXPECT_EQ(ClusterRoleFor(Permission::kRead), "modelcache-viewer");
  EXPECT_EQ(ClusterRoleFor(Permission::kAdmin), "modelcache-admin");
  json request = SubjectAccessReviewRequest({.username = "alice", .uid = "u", .groups = {"ml"}}, "delete");
  EXPECT_EQ(request["spec"]["resourceAttributes"],
            json({{"group", "modelcache.io"}, {"resource", "models"}, {"verb", "delete"}}));
  EXPECT_EQ(request["spec"]["groups"], json::array({"ml"}));
}

TEST(KubeAuthReviews, ADenialNamesTheUserTheCallAndTheMissingPermission) {
  KubeIdentity alice{.username = "alice"};
  EXPECT_TRUE(ReadSubjectAccessReview({{"status", {{"allowed", true}}}}, alice, Permission::kAdmin, "Purge").ok());
  absl::Status denied = ReadSubjectAccessReview({{"status", {{"allowed", false}, {"reason", "no binding"}}}}, alice,
                                                Permission::kAdmin, "Purge");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(denied.message()),
            "alice may not Purge: needs verb \"delete\" on models.modelcache.io (ClusterRole modelcache-admin) "
            "(SubjectAccessReview: no binding)");
  EXPECT_EQ(ReadSubjectAccessReview({{"status", {{"allowed", true}, {"denied", true}}}}, alice, Permission::kRead, "x")
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(KubeAuthReviewCache, AnEntryLivesForItsTtlOnly) {
  testing::FakeClock clock;
  ReviewCache<int> cache(clock, 60s);
  cache.Put("a", 1);
  clock.Advance(59s);
  EXPECT_EQ(cache.Find("a"), 1);
  clock.Advance(1s);
  EXPECT_EQ(cache.Find("a"), std::nullopt);
  EXPECT_EQ(cache.Size(), 0u);
}

TEST(KubeAuthReviewCache, AtCapacityTheExpiredThenTheSoonestToExpireGo) {
  testing::FakeClock clock;
  ReviewCache<int> cache(clock, 60s, 2);
  cache.Put("old", 1);
  clock.Advance(10s);
  cache.Put("new", 2);
  cache.Put("newest", 3);  // full: "old" expires first
  EXPECT_EQ(cache.Find("old"), std::nullopt);
  EXPECT_EQ(cache.Find("new"), 2);
  EXPECT_EQ(cache.Find("newest"), 3);
  ReviewCache<int> off(clock, 0s);
  off.Put("a", 1);
  EXPECT_EQ(off.Find("a"), std::nullopt);
}

TEST(KubeAuthConfig, DefaultsAndEveryKey) {
  auto defaults = ParseKubernetesAuthConfig(YAML::Node());
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->enabled);
  EXPECT_EQ(defaults->AgentUsername(), "system:serviceaccount:modelcache:modelcache-agent");
  auto config = ParseKubernetesAuthConfig(YAML::Load(
      "{enabled: true, audience: mc, agentServiceAccount: ns/agent, cacheFor: 2m, reviewTimeout: 3s}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->enabled);
  EXPECT_EQ(config->audience, "mc");
  EXPECT_EQ(config->AgentUsername(), "system:serviceaccount:ns:agent");
  EXPECT_EQ(config->cache_for, 120s);
  EXPECT_EQ(config->review_timeout, 3s);
}

TEST(KubeAuthConfig, BadValuesNameTheKey) {
  for (const auto& [yaml, key] : std::vector<std::pair<std::string, std::string>>{
           {"{enabled: yes}", "coordinator.kubernetesAuth.enabled"},
           {"{agentServiceAccount: agent}", "coordinator.kubernetesAuth.agentServiceAccount"},
           {"{cacheFor: 1h}", "coordinator.kubernetesAuth.cacheFor"},
           {"{reviewTimeout: 0s}", "coordinator.kubernetesAuth.reviewTimeout"},
           {"{audience: \"\"}", "coordinator.kubernetesAuth.audience"},
           {"{audiences: [a]}", "coordinator.kubernetesAuth.audiences"}}) {
    auto config = ParseKubernetesAuthConfig(YAML::Load(yaml));
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(key)) << yaml;
  }
  auto coordinator = ParseCoordinatorConfig("coordinator: {kubernetesAuth: {enabled: true, cacheFor: 30s}}");
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  EXPECT_TRUE(coordinator->kubernetes_auth.enabled);
  EXPECT_EQ(coordinator->kubernetes_auth.cache_for, 30s);
}

}  // namespace
}  // namespace modelcache::kube_auth
