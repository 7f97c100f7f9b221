#include <gtest/gtest.h>

#include "agent/store/layout.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

TEST(CacheLayout, PathsFollowTheVolumeLayout) {
  CacheLayout layout("/cache");
  EXPECT_EQ(layout.Root(), "/cache");
  EXPECT_EQ(layout.ModelsDir(), "/cache/models");
  EXPECT_EQ(layout.ModelDir("llama", "v2"), "/cache/models/llama/v2");
  EXPECT_EQ(layout.ManifestPath("llama", "v2"), "/cache/models/llama/v2/.modelcache-manifest.json");
  EXPECT_EQ(layout.StagingDir(), "/cache/staging");
  EXPECT_EQ(layout.StagingFor("llama", "v2"), "/cache/staging/llama@v2");
  EXPECT_EQ(layout.StagingTree("llama", "v2"), "/cache/staging/llama@v2/tree");
  EXPECT_EQ(layout.JournalPath("llama", "v2"), "/cache/staging/llama@v2/journal.json");
  EXPECT_EQ(layout.TrashDir(), "/cache/trash");
  EXPECT_EQ(layout.QuarantineDir(), "/cache/quarantine");
  EXPECT_EQ(layout.LocksDir(), "/cache/locks");
  EXPECT_EQ(layout.VolumeIdPath(), "/cache/.modelcache-volume-id");
  EXPECT_EQ(layout.AgentsDir(), "/cache/agents");
  EXPECT_EQ(layout.AgentStateDir("node-a"), "/cache/agents/node-a");
}

TEST(CacheLayout, AnAgentWithoutANodeNameKeepsItsStateUnderUnnamed) {
  CacheLayout layout("/cache");
  EXPECT_EQ(layout.AgentStateDir(""), "/cache/agents/unnamed");
}

TEST(CacheLayout, CreateDirectoriesMakesTheThreeFolders) {
  testing::TempDir dir;
  CacheLayout layout(dir.Path() / "volume");
  ASSERT_TRUE(layout.CreateDirectories().ok());
  EXPECT_TRUE(std::filesystem::is_directory(layout.ModelsDir()));
  EXPECT_TRUE(std::filesystem::is_directory(layout.StagingDir()));
  EXPECT_TRUE(std::filesystem::is_directory(layout.TrashDir()));
  EXPECT_TRUE(layout.CreateDirectories().ok());
}

}  // namespace
}  // namespace modelcache
