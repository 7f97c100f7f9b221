// kube/resource.h: request paths of resources.
#include "kube/resource.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelcache::kube {
namespace {

using ::testing::HasSubstr;

TEST(KubeResource, PathsOfCoreAndGroupResources) {
  EXPECT_EQ(ResourcePath(PersistentVolumes(), "", "pv-1").value_or(""), "/api/v1/persistentvolumes/pv-1");
  EXPECT_EQ(ResourcePath(PersistentVolumeClaims(), "team-a", "data", "status").value_or(""),
            "/api/v1/namespaces/team-a/persistentvolumeclaims/data/status");
  EXPECT_EQ(ResourcePath(PersistentVolumeClaims(), "").value_or(""), "/api/v1/persistentvolumeclaims")
      << "all namespaces";
  EXPECT_EQ(ResourcePath(Namespaces(), "", "team-a").value_or(""), "/api/v1/namespaces/team-a");
  EXPECT_EQ(ResourcePath(MutatingWebhookConfigurations(), "", "w").value_or(""),
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/w");
  EXPECT_EQ(ResourcePath(TokenReviews(), "").value_or(""), "/apis/authentication.k8s.io/v1/tokenreviews");
  EXPECT_EQ(SubjectAccessReviews().ApiVersion(), "authorization.k8s.io/v1");
  EXPECT_EQ(MutatingWebhookConfigurations().QualifiedName(), "mutatingwebhookconfigurations.admissionregistration.k8s.io");
}

TEST(KubeResource, ScopeMistakesAndPathEscapesAreRefused) {
  auto cluster_with_namespace = ResourcePath(PersistentVolumes(), "team-a", "pv");
  ASSERT_FALSE(cluster_with_namespace.ok());
  EXPECT_THAT(std::string(cluster_with_namespace.status().message()), HasSubstr("cluster-scoped"));
  EXPECT_FALSE(ResourcePath(Pods(), "", "p").ok()) << "a namespaced object needs its namespace";
  EXPECT_FALSE(ResourcePath(Pods(), "a", "../../secrets").ok());
  EXPECT_FALSE(ResourcePath(Pods(), "..", "p").ok());
  EXPECT_FALSE(ResourcePath(Pods(), "a", "p%2f").ok());
  EXPECT_FALSE(ResourcePath(Pods(), "a", "", "status").ok()) << "a subresource needs an object";
}

TEST(KubeResource, QueryValuesAreEncoded) {
  EXPECT_EQ(EncodeQueryValue("tier in (a,b),app!=x"), "tier%20in%20%28a%2Cb%29%2Capp%21%3Dx");
  EXPECT_EQ(EncodeQueryValue("spec.nodeName=node-1"), "spec.nodeName%3Dnode-1");
}

}  // namespace
}  // namespace modelcache::kube
