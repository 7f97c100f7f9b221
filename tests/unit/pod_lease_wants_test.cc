#include "agent/pod_leases/pod_lease_wants.h"

#include <gtest/gtest.h>

namespace modelcache::pod_leases {
namespace {

nlohmann::json Pod(nlohmann::json annotations, std::string phase = "Running") {
  return {{"metadata",
           {{"name", "server-1"}, {"namespace", "team-a"}, {"uid", "u-1"}, {"annotations", std::move(annotations)}}},
          {"status", {{"phase", phase}}}};
}

TEST(PodLeaseWants, AnnotatedRunningPodWantsItsModel) {
  PodLeases leases = LeasesOf(Pod({{"modelcache.io/model", "llama"}, {"modelcache.io/version", "v2"}}));
  ASSERT_EQ(leases.wants.size(), 1u);
  EXPECT_EQ(leases.wants[0], (PodLeaseWant{"llama", "v2"}));
  EXPECT_EQ(leases.uid, "u-1");
  EXPECT_EQ(leases.holder, "pod:team-a/server-1:u-1");
  EXPECT_EQ(leases.skipped, "");
}

TEST(PodLeaseWants, PendingPodHoldsToo) {
  // Scheduled but not started: its init container is about to fetch; the model must stay.
  EXPECT_EQ(LeasesOf(Pod({{"modelcache.io/model", "m"}, {"modelcache.io/version", "1"}}, "Pending")).wants.size(), 1u);
}

TEST(PodLeaseWants, EndedPodHoldsNothing) {
  for (const char* phase : {"Succeeded", "Failed"}) {
    PodLeases leases = LeasesOf(Pod({{"modelcache.io/model", "m"}, {"modelcache.io/version", "1"}}, phase));
    EXPECT_TRUE(leases.wants.empty()) << phase;
    EXPECT_EQ(leases.skipped, std::string("pod ") + phase);
  }
}

TEST(PodLeaseWants, PodWithoutAnnotationsHoldsNothingSilently) {
  PodLeases leases = LeasesOf({{"metadata", {{"name", "x"}, {"uid", "u"}}}});
  EXPECT_TRUE(leases.wants.empty());
  EXPECT_EQ(leases.skipped, "");
}

TEST(PodLeaseWants, BadAnnotationsAreNamed) {
  PodLeases no_version = LeasesOf(Pod({{"modelcache.io/model", "m"}}));
  EXPECT_TRUE(no_version.wants.empty());
  EXPECT_EQ(no_version.skipped, "modelcache.io/version: missing");
  PodLeases bad_name = LeasesOf(Pod({{"modelcache.io/model", "../x"}, {"modelcache.io/version", "1"}}));
  EXPECT_TRUE(bad_name.wants.empty());
  EXPECT_NE(bad_name.skipped.find("modelcache.io/model"), std::string::npos) << bad_name.skipped;
}

TEST(PodLeaseWants, HoldersReadAsThePodTheyStandFor) {
  EXPECT_EQ(HolderForPeople(LeasesOf(Pod({})).holder), "pod team-a/server-1");
  EXPECT_EQ(HolderForPeople("team-a/server-1"), "team-a/server-1");  // a fetch's --holder
  EXPECT_EQ(HolderForPeople("batch-job"), "batch-job");
}

}  // namespace
}  // namespace modelcache::pod_leases
