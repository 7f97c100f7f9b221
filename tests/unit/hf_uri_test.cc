#include "common/hf_uri.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/uri.h"

namespace modelcache {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(HfUri, OwnerAndRepoDefaultToMainAndTheWholeRepo) {
  absl::StatusOr<HfUri> uri = ParseHfUri("hf://meta-llama/Llama-3.2-1B");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->repo_type, "model");
  EXPECT_EQ(uri->repo_id, "meta-llama/Llama-3.2-1B");
  EXPECT_EQ(uri->revision, "main");
  EXPECT_EQ(uri->subfolder, "");
  EXPECT_EQ(uri->ApiRepoPath(), "models/meta-llama/Llama-3.2-1B");
  EXPECT_EQ(uri->ResolveRepoPath(), "meta-llama/Llama-3.2-1B");
}

TEST(HfUri, RevisionSubfolderAndDatasets) {
  absl::StatusOr<HfUri> uri = ParseHfUri("hf://datasets/org/data@v1.0/train//part-1/");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->repo_type, "dataset");
  EXPECT_EQ(uri->revision, "v1.0");
  EXPECT_EQ(uri->subfolder, "train/part-1");
  EXPECT_EQ(uri->ResolveRepoPath(), "datasets/org/data");
  EXPECT_EQ(uri->ApiRepoPath(), "datasets/org/data");
  EXPECT_EQ(ParseHfUri("hf://models/o/r@abc")->repo_type, "model");
}

TEST(HfUri, RevisionsWithSlashes) {
  EXPECT_EQ(ParseHfUri("hf://o/r@refs/pr/12/onnx")->revision, "refs/pr/12");
  EXPECT_EQ(ParseHfUri("hf://o/r@refs/pr/12/onnx")->subfolder, "onnx");
  EXPECT_EQ(ParseHfUri("hf://o/r@feature%2Fx/sub")->revision, "feature/x");
  EXPECT_EQ(FormatHfUri(*ParseHfUri("hf://o/r@refs/pr/12")), "hf://o/r@refs%2Fpr%2F12");
}

TEST(HfUri, AllowAndIgnorePatternsSelectRelativePaths) {
  absl::StatusOr<HfUri> uri =
      ParseHfUri("hf://o/r?allow=*.safetensors,*.json&ignore=original/&allow=tokenizer*");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_THAT(uri->allow, ElementsAre("*.json", "*.safetensors", "tokenizer*"));
  EXPECT_THAT(uri->ignore, ElementsAre("original/"));
  EXPECT_TRUE(uri->Selects("model-00001-of-00002.safetensors"));
  EXPECT_TRUE(uri->Selects("sub/folder/config.json")) << "'*' crosses folders";
  EXPECT_TRUE(uri->Selects("tokenizer.model"));
  EXPECT_FALSE(uri->Selects("original/consolidated.safetensors"));
  EXPECT_FALSE(uri->Selects("pytorch_model.bin"));
  EXPECT_TRUE(ParseHfUri("hf://o/r")->Selects("anything/at.all"));
}

TEST(HfUri, BadUrisAreRefusedNamingTheUri) {
  for (const char* bad : {"hf://onlyowner", "hf://o/r@", "hf://o/r/../x", "hf://o/r@a/%2E%2E",
                          "hf://o/re po", "hf://o/r?revision=x", "hf://spaces/o/r", "hf://o/r@..",
                          "hf://o/r#frag", "hf://o!/r"}) {
    absl::StatusOr<HfUri> uri = ParseHfUri(bad);
    ASSERT_FALSE(uri.ok()) << bad;
    EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(uri.status().message()), HasSubstr(bad));
  }
}

TEST(HfUri, SameSourceUnderTheCanonicalForm) {
  EXPECT_TRUE(SameSource("hf://o/r", "hf://o/r@main"));
  EXPECT_TRUE(SameSource("hf://o/r/sub/", "hf://o/r@main/sub"));
  EXPECT_TRUE(SameSource("HF://o/r?allow=b,a", "hf://o/r?allow=a&allow=b"));
  EXPECT_TRUE(SameSource("hf://models/o/r", "hf://o/r"));
  EXPECT_FALSE(SameSource("hf://o/r", "hf://o/r@v2"));
  EXPECT_FALSE(SameSource("hf://o/r", "hf://O/r")) << "in doubt, different";
  EXPECT_FALSE(SameSource("hf://o/r", "hf://o/r?allow=*.json"));
  EXPECT_FALSE(SameSource("hf://o/r", "hf://datasets/o/r"));
  EXPECT_FALSE(SameSource("hf://o/r", "hf://o/r/sub"));
  absl::StatusOr<SourceUri> generic = ParseSourceUri("hf://o/r@v1/sub");
  ASSERT_TRUE(generic.ok()) << generic.status();
  EXPECT_EQ(generic->scheme, "hf");
  EXPECT_EQ(generic->authority, "o/r");
  EXPECT_EQ(generic->path, "@v1/sub");
}

}  // namespace
}  // namespace modelcache
