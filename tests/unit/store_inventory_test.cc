#include <gtest/gtest.h>

#include <algorithm>

#include "agent/store/index.h"
#include "agent/store/inventory.h"
#include "agent/store/manifest.h"
#include "agent/store/trash.h"
#include "common/fs.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;

// A published model with one file of `bytes` bytes.
void PutModel(const CacheLayout& layout, const std::string& name, const std::string& version,
              size_t bytes) {
  fs::path dir = layout.ModelDir(name, version);
  ASSERT_TRUE(CreateDirectories(dir).ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "weights.bin", std::string(bytes, 'w')).ok());
  v1::Manifest manifest;
  manifest.set_name(name);
  manifest.set_version(version);
  manifest.set_fetched_unix_ms(1'000);
  manifest.set_total_bytes(bytes);
  v1::ManifestFile* file = manifest.add_files();
  file->set_path("weights.bin");
  file->set_size(bytes);
  ASSERT_TRUE(WriteManifest(layout.ManifestPath(name, version), manifest).ok());
}

void PutStaging(const CacheLayout& layout, const std::string& name, const std::string& version,
                size_t bytes, bool journal) {
  ASSERT_TRUE(CreateDirectories(layout.StagingTree(name, version)).ok());
  ASSERT_TRUE(
      WriteFileAtomic(layout.StagingTree(name, version) / "part", std::string(bytes, 's')).ok());
  if (journal) {
    v1::FillJournal fill_journal;
    fill_journal.set_name(name);
    fill_journal.set_version(version);
    ASSERT_TRUE(WriteJournal(layout.JournalPath(name, version), fill_journal).ok());
  }
}

uint64_t FileBytes(const fs::path& path) { return fs::file_size(path); }

class InventoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(layout_.CreateDirectories().ok());
    PutModel(layout_, "llama", "v1", 1000);
    PutModel(layout_, "llama", "v2", 2000);
    PutModel(layout_, "bert", "1", 300);
    ASSERT_TRUE(PersistAccess(layout_, "bert", "1", FromUnixMillis(5'000'000)).ok());
    PutStaging(layout_, "gpt", "7", 700, true);
    PutStaging(layout_, "old", "1", 50, false);
    ASSERT_TRUE(CreateDirectories(layout_.ModelDir("broken", "1")).ok());  // no manifest
    ASSERT_TRUE(WriteFileAtomic(layout_.ModelDir("broken", "1") / "x", "12345").ok());
    ASSERT_TRUE(CreateDirectories(layout_.Root() / "junk").ok());
    ASSERT_TRUE(WriteFileAtomic(layout_.Root() / "junk" / "file", std::string(40, 'j')).ok());
    ASSERT_TRUE(WriteFileAtomic(layout_.Root() / "stray.txt", "abc").ok());
    ASSERT_TRUE(CreateDirectories(layout_.TrashDir() / "123-x").ok());
    ASSERT_TRUE(CreateDirectories(layout_.QuarantineDir() / "m@1-5").ok());
    ASSERT_TRUE(WriteFileAtomic(layout_.TrashDir() / "123-x" / "f", std::string(60, 't')).ok());
    ASSERT_TRUE(
        WriteFileAtomic(layout_.QuarantineDir() / "m@1-5" / "f", std::string(70, 'q')).ok());
  }

  const InventoryModel* FindModel(const Inventory& inventory, const std::string& name,
                                  const std::string& version) {
    for (const InventoryModel& model : inventory.models) {
      if (model.name == name && model.version == version) return &model;
    }
    return nullptr;
  }

  testing::TempDir dir_;
  CacheLayout layout_{dir_.Path() / "cache"};
};

TEST_F(InventoryTest, ListsEverythingWithSizes) {
  absl::StatusOr<Inventory> inventory = TakeInventory(layout_);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  ASSERT_EQ(inventory->models.size(), 3u);
  const InventoryModel* v2 = FindModel(*inventory, "llama", "v2");
  ASSERT_NE(v2, nullptr);
  EXPECT_EQ(v2->bytes, 2000 + FileBytes(layout_.ManifestPath("llama", "v2")));
  EXPECT_EQ(ToUnixMillis(v2->last_access), 1'000);  // no access file: fetched time
  EXPECT_EQ(ToUnixMillis(FindModel(*inventory, "bert", "1")->last_access), 5'000'000);

  ASSERT_EQ(inventory->staging.size(), 2u);
  EXPECT_EQ(inventory->staging[0].folder, "gpt@7");
  EXPECT_TRUE(inventory->staging[0].journal_present);
  EXPECT_EQ(inventory->staging[0].bytes, 700 + FileBytes(layout_.JournalPath("gpt", "7")));
  EXPECT_EQ(inventory->staging[1].folder, "old@1");
  EXPECT_FALSE(inventory->staging[1].journal_present);
  EXPECT_EQ(inventory->staging[1].bytes, 50u);

  ASSERT_EQ(inventory->trash.size(), 1u);
  EXPECT_EQ(inventory->trash[0].path, "trash/123-x");
  EXPECT_EQ(inventory->trash[0].bytes, 60u);
  ASSERT_EQ(inventory->quarantine.size(), 1u);
  EXPECT_EQ(inventory->quarantine[0].bytes, 70u);

  ASSERT_EQ(inventory->unknown.size(), 3u);
  EXPECT_EQ(inventory->unknown[0].path, "junk");
  EXPECT_EQ(inventory->unknown[0].bytes, 40u);
  EXPECT_EQ(inventory->unknown[1].path, "models/broken/1");
  EXPECT_EQ(inventory->unknown[1].bytes, 5u);
  EXPECT_EQ(inventory->unknown[2].path, "stray.txt");
  // Taking the inventory changed nothing.
  EXPECT_TRUE(fs::exists(layout_.ModelDir("broken", "1")));
  EXPECT_TRUE(fs::exists(layout_.StagingFor("old", "1")));
}

TEST_F(InventoryTest, PlanForSpecificModelsSkipsLeasedUnlessForced) {
  absl::StatusOr<Inventory> inventory = TakeInventory(layout_);
  ASSERT_TRUE(inventory.ok());
  CleanupRequest request;
  request.models = {{"llama", ""}, {"nope", "1"}};
  request.leased = {{"llama", "v1"}};
  CleanupPlan plan = PlanCleanup(*inventory, request);
  ASSERT_EQ(plan.remove.size(), 1u);
  EXPECT_EQ(plan.remove[0].path, "models/llama/v2");
  EXPECT_EQ(plan.remove[0].kind, CleanupItem::Kind::kModel);
  EXPECT_EQ(plan.bytes, FindModel(*inventory, "llama", "v2")->bytes);
  ASSERT_EQ(plan.kept.size(), 2u);
  EXPECT_NE(plan.kept[0].find("models/llama/v1: live lease"), std::string::npos) << plan.kept[0];
  EXPECT_NE(plan.kept[1].find("nope@1: not on this volume"), std::string::npos) << plan.kept[1];

  request.force = true;
  plan = PlanCleanup(*inventory, request);
  EXPECT_EQ(plan.remove.size(), 2u);
}

TEST_F(InventoryTest, PlanForStaleStagingUsesAge) {
  Inventory inventory;
  InventoryStaging fresh{"a@1", 10, true, FromUnixMillis(0) + hours(10)};
  InventoryStaging stale{"b@1", 20, true, FromUnixMillis(0) + hours(1)};
  InventoryStaging leased{"c@1", 30, false, FromUnixMillis(0)};
  inventory.staging = {fresh, stale, leased};
  CleanupRequest request;
  request.staging_older_than = std::chrono::hours(6);
  request.now = FromUnixMillis(0) + hours(12);
  request.leased = {{"c", "1"}};
  CleanupPlan plan = PlanCleanup(inventory, request);
  ASSERT_EQ(plan.remove.size(), 1u);
  EXPECT_EQ(plan.remove[0].path, "staging/b@1");
  EXPECT_EQ(plan.bytes, 20u);
  ASSERT_EQ(plan.kept.size(), 1u);
  EXPECT_NE(plan.kept[0].find("staging/c@1"), std::string::npos);
}

TEST_F(InventoryTest, PlanForEverythingCoversAllButLeases) {
  absl::StatusOr<Inventory> inventory = TakeInventory(layout_);
  ASSERT_TRUE(inventory.ok());
  CleanupRequest request;
  request.everything = true;
  request.leased = {{"gpt", "7"}};
  CleanupPlan plan = PlanCleanup(*inventory, request);
  // 3 models + old@1 + trash + quarantine + 3 unknown.
  EXPECT_EQ(plan.remove.size(), 9u);
  uint64_t sum = 0;
  for (const CleanupItem& item : plan.remove) {
    EXPECT_NE(item.path, "staging/gpt@7");
    sum += item.bytes;
  }
  EXPECT_EQ(plan.bytes, sum);
}

TEST_F(InventoryTest, ExecuteRemovesPlannedItemsAndCountsBytes) {
  absl::StatusOr<Inventory> inventory = TakeInventory(layout_);
  ASSERT_TRUE(inventory.ok());
  CleanupRequest request;
  request.models = {{"llama", "v2"}};
  request.trash = true;
  request.unknown = true;
  CleanupPlan plan = PlanCleanup(*inventory, request);
  absl::StatusOr<CleanupResult> result = ExecuteCleanup(layout_, plan);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->problems.empty());
  EXPECT_EQ(result->bytes_freed, plan.bytes);
  EXPECT_EQ(result->removed.size(), plan.remove.size());
  EXPECT_GT(result->before.capacity_bytes, 0u);
  EXPECT_FALSE(fs::exists(layout_.ModelDir("llama", "v2")));
  EXPECT_FALSE(fs::exists(layout_.ModelDir("broken", "1")));
  EXPECT_FALSE(fs::exists(layout_.Root() / "junk"));
  EXPECT_FALSE(fs::exists(layout_.Root() / "stray.txt"));
  EXPECT_TRUE(fs::exists(layout_.ModelDir("llama", "v1")));
  EXPECT_TRUE(fs::exists(layout_.StagingFor("gpt", "7")));
  EXPECT_TRUE(fs::is_empty(layout_.TrashDir()));

  absl::StatusOr<Inventory> after = TakeInventory(layout_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->models.size(), 2u);
  EXPECT_TRUE(after->unknown.empty());
  EXPECT_TRUE(after->trash.empty());
}

TEST_F(InventoryTest, ExecuteSkipsItemsAlreadyGone) {
  absl::StatusOr<Inventory> inventory = TakeInventory(layout_);
  ASSERT_TRUE(inventory.ok());
  CleanupRequest request;
  request.models = {{"bert", "1"}, {"llama", "v1"}};
  CleanupPlan plan = PlanCleanup(*inventory, request);
  ASSERT_EQ(plan.remove.size(), 2u);
  ASSERT_TRUE(RemoveTree(layout_.ModelDir("bert", "1")).ok());  // another agent was faster
  absl::StatusOr<CleanupResult> result = ExecuteCleanup(layout_, plan);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->problems.empty());
  ASSERT_EQ(result->removed.size(), 1u);
  EXPECT_EQ(result->removed[0], "models/llama/v1");
  EXPECT_EQ(result->bytes_freed, FindModel(*inventory, "llama", "v1")->bytes);
}

}  // namespace
}  // namespace modelcache
