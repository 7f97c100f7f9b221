#include "agent/hit_decision.h"

#include <gtest/gtest.h>

namespace modelcache {
namespace {

v1::Manifest Published(const std::string& source) {
  v1::Manifest manifest;
  manifest.set_name("llama");
  manifest.set_version("v3");
  manifest.set_source(source);
  return manifest;
}

TEST(HitDecision, APublishedModelOfTheSameSourceIsServed) {
  EXPECT_EQ(DecideHit("llama", "v3", Published("s3://models/llama/v3/"), "s3://models/llama/v3/")
                .action,
            HitAction::kServe);
  // The same source written another way (common/uri.h).
  EXPECT_EQ(DecideHit("llama", "v3", Published("http://h:80/m/"), "HTTP://H/m/").action,
            HitAction::kServe);
}

TEST(HitDecision, AFolderThatIsGoneIsFilledAgain) {
  HitDecision decision = DecideHit("llama", "v3", absl::NotFoundError("open x: No such file"),
                                   "s3://models/llama/v3/");
  EXPECT_EQ(decision.action, HitAction::kFillAgain);
}

TEST(HitDecision, AnotherSourceIsRefusedNamingTheModelAndBothSources) {
  HitDecision decision = DecideHit("llama", "v3", Published("http://attacker.example/w.bin"),
                                   "s3://models/llama/v3/");
  ASSERT_EQ(decision.action, HitAction::kRefuse);
  EXPECT_EQ(decision.error.code(), absl::StatusCode::kFailedPrecondition);
  std::string message(decision.error.message());
  EXPECT_NE(message.find("llama@v3"), std::string::npos) << message;
  EXPECT_NE(message.find("http://attacker.example/w.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("s3://models/llama/v3/"), std::string::npos) << message;
  EXPECT_NE(message.find("--fallback"), std::string::npos) << message;
}

TEST(HitDecision, AnUnreadableOrForeignManifestIsRefusedWithItsCause) {
  HitDecision unreadable =
      DecideHit("llama", "v3", absl::DataLossError("/c/models/llama/v3/.m.json: invalid JSON"),
                "s3://b/p/");
  ASSERT_EQ(unreadable.action, HitAction::kRefuse);
  EXPECT_EQ(unreadable.error.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(unreadable.error.message()).find("llama@v3"), std::string::npos);
  EXPECT_NE(std::string(unreadable.error.message()).find("invalid JSON"), std::string::npos);

  v1::Manifest foreign = Published("s3://b/p/");
  foreign.set_version("v2");
  HitDecision other = DecideHit("llama", "v3", foreign, "s3://b/p/");
  ASSERT_EQ(other.action, HitAction::kRefuse);
  EXPECT_EQ(other.error.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(other.error.message()).find("llama@v2"), std::string::npos);
}

TEST(HitDecision, TheErrorSaysWhereTheOtherSourcesModelIs) {
  auto message = [](SourceConflict where) {
    return std::string(OtherSourceError("m", "v1", where, "http://x/", "http://y/", "node-a")
                           .message());
  };
  EXPECT_NE(message(SourceConflict::kPublished).find("is cached on this volume from http://x/"),
            std::string::npos);
  EXPECT_NE(message(SourceConflict::kFilling).find("is being filled by this agent from"),
            std::string::npos);
  EXPECT_NE(message(SourceConflict::kFillingOnAnotherAgent)
                .find("is being filled by the agent on node-a of this volume from http://x/"),
            std::string::npos);
  EXPECT_NE(message(SourceConflict::kFilling).find("not from http://y/ as asked"),
            std::string::npos);
}

}  // namespace
}  // namespace modelcache
