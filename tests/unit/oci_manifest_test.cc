#include "agent/source/oci_manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelcache {
namespace {

using ::testing::HasSubstr;

constexpr char kDigestA[] = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kDigestB[] = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

v1::OciManifest Parse(const std::string& json) {
  absl::StatusOr<v1::OciManifest> manifest = ParseOciManifest(json, "test");
  EXPECT_TRUE(manifest.ok()) << manifest.status();
  return manifest.ok() ? *manifest : v1::OciManifest();
}

TEST(OciManifest, ModelPackRawLayersAreFilesAtTheirPaths) {
  const v1::OciManifest manifest = Parse(std::string(R"({"schemaVersion":2,
    "mediaType":"application/vnd.oci.image.manifest.v1+json",
    "artifactType":"application/vnd.cncf.model.manifest.v1+json",
    "config":{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":")") + kDigestA + R"(","size":2},
    "layers":[
      {"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":")" + kDigestA + R"(","size":10,
       "annotations":{"org.cncf.model.filepath":"weights/model.safetensors"}},
      {"mediaType":"application/vnd.cncf.model.weight.config.v1.tar+gzip","digest":")" + kDigestB + R"(","size":20}]})");
  absl::StatusOr<OciLayerPlan> plan = PlanOciLayers(manifest, "oci://r/m:v1");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->kind, "modelpack");
  ASSERT_EQ(plan->files.size(), 1u);
  EXPECT_EQ(plan->files[0].path, "weights/model.safetensors");
  EXPECT_EQ(plan->files[0].size, 10u);
  ASSERT_EQ(plan->archives.size(), 1u);
  EXPECT_TRUE(plan->archives[0].gzip);
  EXPECT_EQ(plan->archives[0].folder, "");
}

TEST(OciManifest, ImageLayersAreAModelcarUnderModels) {
  const v1::OciManifest manifest = Parse(std::string(R"({"schemaVersion":2,
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")") + kDigestA + R"(","size":2},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" + kDigestB + R"(","size":20},
              {"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" + kDigestA + R"(","size":30}]})");
  absl::StatusOr<OciLayerPlan> plan = PlanOciLayers(manifest, "oci://r/m:v1");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->kind, "modelcar");
  ASSERT_EQ(plan->archives.size(), 2u);
  EXPECT_TRUE(plan->archives[0].gzip);
  EXPECT_FALSE(plan->archives[1].gzip);
  EXPECT_EQ(plan->archives[0].folder, "models");
}

TEST(OciManifest, BadLayersAreRefusedNamingThem) {
  auto plan_of = [](const std::string& layer) {
    return PlanOciLayers(Parse(std::string(R"({"schemaVersion":2,"artifactType":"application/vnd.cncf.model.manifest.v1+json","layers":[)") + layer + "]}"),
                         "oci://r/m:v1");
  };
  const std::string raw = std::string(R"({"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":")") + kDigestA + R"(","size":1)";
  EXPECT_THAT(std::string(plan_of(raw + "}").status().message()), HasSubstr("org.cncf.model.filepath"));
  EXPECT_THAT(std::string(plan_of(raw + R"(,"annotations":{"org.cncf.model.filepath":"../x"}})").status().message()),
              HasSubstr("layer 0"));
  EXPECT_EQ(plan_of(raw + R"(,"annotations":{"org.cncf.model.filepath":"a"}},)" + raw +
                    R"(,"annotations":{"org.cncf.model.filepath":"a"}})")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(plan_of(R"({"mediaType":"application/vnd.cncf.model.weight.v1.tar+zstd","digest":")" + std::string(kDigestA) + R"(","size":1})")
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(plan_of(R"({"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"md5:x","size":1})")
                              .status()
                              .message()),
              HasSubstr("sha256"));
}

TEST(OciManifest, IndexPicksTheModelArtifactOrThePlatformImage) {
  const v1::OciManifest index = Parse(std::string(R"({"schemaVersion":2,
    "mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")") + kDigestA + R"(","size":1,
       "platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + kDigestB + R"(","size":1,
       "artifactType":"application/vnd.cncf.model.manifest.v1+json"}]})");
  EXPECT_TRUE(IsOciIndex(index, ""));
  absl::StatusOr<v1::OciDescriptor> entry = PickIndexEntry(index, "linux", "amd64", "oci://r/m:v1");
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->digest(), kDigestB);

  const v1::OciManifest images = Parse(std::string(R"({"schemaVersion":2,"manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")") + kDigestA + R"(","size":1,
       "platform":{"os":"linux","architecture":"arm64"}}]})");
  EXPECT_TRUE(IsOciIndex(images, "application/vnd.oci.image.index.v1+json"));
  absl::StatusOr<v1::OciDescriptor> none = PickIndexEntry(images, "linux", "amd64", "oci://r/m:v1");
  ASSERT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("not a model artifact"));
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("linux/arm64"));
}

TEST(OciManifest, NotAManifest) {
  EXPECT_EQ(ParseOciManifest("[1,2]", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseOciManifest(R"({"schemaVersion":1})", "x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelcache
