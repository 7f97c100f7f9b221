#include "coordinator/db/store.h"

#include <gtest/gtest.h>

#include <set>
#include <stdlib.h>

#include <filesystem>

namespace modelcache {
namespace {

class TempDatabase {
 public:
  TempDatabase() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mc-store-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
  }
  ~TempDatabase() { std::filesystem::remove_all(dir_); }
  std::string Path() const { return (dir_ / "coordinator.db").string(); }

 private:
  std::filesystem::path dir_;
};

v1::AgentHello Hello(std::string node, std::string volume) {
  v1::AgentHello hello;
  hello.set_node_name(std::move(node));
  hello.set_volume_id(std::move(volume));
  hello.set_capacity_bytes(1000);
  hello.set_free_bytes(600);
  hello.set_agent_version("test");
  return hello;
}

v1::ModelUsage Usage(std::string name, std::string version, uint64_t bytes, int64_t access_ms,
                     uint32_t leases = 0) {
  v1::ModelUsage usage;
  usage.set_name(std::move(name));
  usage.set_version(std::move(version));
  usage.set_size_bytes(bytes);
  usage.set_last_access_unix_ms(access_ms);
  usage.set_live_leases(leases);
  usage.set_state(v1::ModelUsage::READY);
  return usage;
}

TEST(CoordinatorStore, MigratesFreshDatabaseToNewestSchema) {
  TempDatabase temp;
  auto db = Database::Open(temp.Path());
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(*(*db)->UserVersion(), 0);
  ASSERT_TRUE(MigrateSchema(**db).ok());
  EXPECT_EQ(*(*db)->UserVersion(), kSchemaVersion);
  // Running the migrations again is a no-op, not an error ("table exists").
  EXPECT_TRUE(MigrateSchema(**db).ok());
}

TEST(CoordinatorStore, RefusesDatabaseFromNewerCoordinator) {
  TempDatabase temp;
  {
    auto db = Database::Open(temp.Path());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Execute("PRAGMA user_version=99").ok());
  }
  auto store = CoordinatorStore::Open(temp.Path(), false);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CoordinatorStore, UsageAggregatesAgentsSharingAVolume) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->RecordHello(Hello("node-a", "vol-1"), FromUnixMillis(1)).ok());
  ASSERT_TRUE(store->RecordHello(Hello("node-b", "vol-1"), FromUnixMillis(1)).ok());
  v1::UsageReport full_a;
  full_a.set_full(true);
  *full_a.add_models() = Usage("llama", "1", 300, 1000, 1);
  v1::UsageReport full_b;
  full_b.set_full(true);
  *full_b.add_models() = Usage("llama", "1", 300, 5000, 0);
  *full_b.add_models() = Usage("bert", "2", 100, 100, 0);
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-1", full_a, FromUnixMillis(2)).ok());
  ASSERT_TRUE(store->ApplyUsage("node-b", "vol-1", full_b, FromUnixMillis(2)).ok());

  auto usage = store->Usage(2000);
  ASSERT_TRUE(usage.ok()) << usage.status();
  ASSERT_EQ(usage->volumes_size(), 1);
  EXPECT_EQ(usage->volumes(0).used_bytes(), 400u);  // llama counted once
  EXPECT_EQ(usage->volumes(0).model_count(), 2u);
  EXPECT_EQ(usage->volumes(0).quota_bytes(), 2000u);
  EXPECT_EQ(usage->volumes(0).nodes_size(), 2);

  auto snapshot = store->LoadSnapshot();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->copies.size(), 2u);
  const CachedCopy& llama = snapshot->copies[1];
  EXPECT_EQ(llama.name, "llama");
  EXPECT_EQ(ToUnixMillis(llama.last_access), 5000);  // newest access of the two agents
  EXPECT_EQ(llama.agent_leases, 1u);

  auto model = store->GetModel("llama", FromUnixMillis(3));
  ASSERT_TRUE(model.ok());
  ASSERT_EQ(model->versions_size(), 1);
  ASSERT_EQ(model->versions(0).copies_size(), 1);
  EXPECT_EQ(model->versions(0).copies(0).nodes_size(), 2);
}

TEST(CoordinatorStore, DeltaRemovesAndFullReportReplaces) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->RecordHello(Hello("node-a", "vol-1"), FromUnixMillis(1)).ok());
  v1::UsageReport full;
  full.set_full(true);
  *full.add_models() = Usage("a", "1", 10, 1);
  *full.add_models() = Usage("b", "1", 20, 1);
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-1", full, FromUnixMillis(2)).ok());
  v1::UsageReport delta;
  v1::ModelKey* removed = delta.add_removed();
  removed->set_name("a");
  removed->set_version("1");
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-1", delta, FromUnixMillis(3)).ok());
  EXPECT_EQ(store->LoadSnapshot()->copies.size(), 1u);
  v1::UsageReport resync;
  resync.set_full(true);
  *resync.add_models() = Usage("c", "1", 30, 1);
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-1", resync, FromUnixMillis(4)).ok());
  auto copies = store->LoadSnapshot()->copies;
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].name, "c");
}

TEST(CoordinatorStore, ANodeOnANewVolumeStillReportsTheOldOneAsAnExtraVolume) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->RecordHello(Hello("node-a", "vol-old"), FromUnixMillis(1)).ok());
  v1::UsageReport old_full;
  old_full.set_full(true);
  *old_full.add_models() = Usage("llama", "1", 300, 1000);
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-old", old_full, FromUnixMillis(2)).ok());

  // Switch storage: served from vol-new, vol-old mounted as an extra volume.
  v1::AgentHello hello = Hello("node-a", "vol-new");
  v1::ExtraVolume* extra = hello.add_extra_volumes();
  extra->set_volume_id("vol-old");
  extra->set_capacity_bytes(5000);
  extra->set_free_bytes(4000);
  ASSERT_TRUE(store->RecordHello(hello, FromUnixMillis(3)).ok());
  v1::UsageReport new_full;  // the served volume's full report leaves vol-old alone
  new_full.set_full(true);
  new_full.set_capacity_bytes(1000);
  new_full.set_free_bytes(900);
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-new", new_full, FromUnixMillis(4)).ok());

  auto usage = store->Usage(0);
  ASSERT_TRUE(usage.ok()) << usage.status();
  ASSERT_EQ(usage->volumes_size(), 2);
  const v1::VolumeUsage& now = usage->volumes(0);
  const v1::VolumeUsage& old = usage->volumes(1);
  ASSERT_EQ(now.volume_id(), "vol-new");
  EXPECT_EQ(now.model_count(), 0u);
  ASSERT_EQ(now.nodes_size(), 1);
  EXPECT_EQ(now.extra_nodes_size(), 0);
  ASSERT_EQ(old.volume_id(), "vol-old");
  EXPECT_EQ(old.model_count(), 1u);
  EXPECT_EQ(old.used_bytes(), 300u);
  EXPECT_EQ(old.capacity_bytes(), 5000u);
  EXPECT_EQ(old.nodes_size(), 0);
  ASSERT_EQ(old.extra_nodes_size(), 1);
  EXPECT_EQ(old.extra_nodes(0), "node-a");
  // No agent serves vol-old: its copy is draining, so no purge is planned for it.
  auto snapshot = store->LoadSnapshot();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->copies.size(), 1u);
  EXPECT_TRUE(snapshot->copies[0].draining);

  // An extra volume's report leaves the node's own capacity alone; after the cleanup, the
  // extra volume's full report empties it.
  v1::UsageReport cleaned;
  cleaned.set_full(true);
  cleaned.set_volume_id("vol-old");
  cleaned.set_capacity_bytes(5000);
  cleaned.set_free_bytes(4300);
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-old", cleaned, FromUnixMillis(5)).ok());
  usage = store->Usage(0);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->volumes(1).model_count(), 0u);
  EXPECT_EQ(usage->volumes(1).free_bytes(), 4300u);
  auto nodes = store->Nodes();
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(nodes->nodes(0).capacity_bytes(), 1000u);
  EXPECT_EQ(nodes->nodes(0).free_bytes(), 900u);

  // Without the extra volume in its next hello, the node no longer speaks for vol-old.
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-old", old_full, FromUnixMillis(6)).ok());
  ASSERT_TRUE(store->RecordHello(Hello("node-a", "vol-new"), FromUnixMillis(7)).ok());
  usage = store->Usage(0);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->volumes(1).model_count(), 0u);
  EXPECT_EQ(usage->volumes(1).extra_nodes_size(), 0);
}

TEST(CoordinatorStore, ACopyOnAVolumeSomeAgentServesIsNotDraining) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  v1::AgentHello hello = Hello("node-a", "vol-new");
  hello.add_extra_volumes()->set_volume_id("vol-shared");
  ASSERT_TRUE(store->RecordHello(hello, FromUnixMillis(1)).ok());
  ASSERT_TRUE(store->RecordHello(Hello("node-b", "vol-shared"), FromUnixMillis(1)).ok());
  v1::UsageReport report;
  report.set_full(true);
  report.set_volume_id("vol-shared");
  *report.add_models() = Usage("llama", "1", 300, 1000);
  ASSERT_TRUE(store->ApplyUsage("node-a", "vol-shared", report, FromUnixMillis(2)).ok());
  auto snapshot = store->LoadSnapshot();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->copies.size(), 1u);
  EXPECT_FALSE(snapshot->copies[0].draining);  // node-b runs its purge commands
}

TEST(CoordinatorStore, VersionInheritsModelCachingUnlessOverridden) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->SetCaching("m", "", true, FromUnixMillis(1)).ok());
  ASSERT_TRUE(store->SetCaching("m", "2", false, FromUnixMillis(1)).ok());
  ASSERT_TRUE(store->RecordHello(Hello("n", "v"), FromUnixMillis(1)).ok());
  v1::UsageReport report;
  *report.add_models() = Usage("m", "1", 1, 1);
  ASSERT_TRUE(store->ApplyUsage("n", "v", report, FromUnixMillis(1)).ok());
  auto model = store->GetModel("m", FromUnixMillis(1));
  ASSERT_TRUE(model.ok());
  ASSERT_EQ(model->versions_size(), 2);
  EXPECT_TRUE(model->versions(0).caching_enabled());   // "1" inherits
  EXPECT_FALSE(model->versions(0).caching_overridden());
  EXPECT_FALSE(model->versions(1).caching_enabled());  // "2" overridden
  auto policy = store->CachingPolicy();
  ASSERT_TRUE(policy.ok());
  EXPECT_FALSE(policy->default_enabled());
  ASSERT_EQ(policy->rules_size(), 2);
  EXPECT_EQ(policy->rules(1).version(), "2");
  EXPECT_FALSE(policy->rules(1).enabled());
}

TEST(CoordinatorStore, ModelsLearnedFromReportsGetTheDefaultCaching) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), true);
  ASSERT_TRUE(store->RecordHello(Hello("n", "v"), FromUnixMillis(1)).ok());
  v1::UsageReport report;
  *report.add_models() = Usage("new", "1", 1, 1);
  ASSERT_TRUE(store->ApplyUsage("n", "v", report, FromUnixMillis(1)).ok());
  EXPECT_TRUE(store->GetModel("new", FromUnixMillis(1))->caching_enabled());
}

TEST(CoordinatorStore, DeleteUnknownModelIsNotFoundAndDeleteDisablesCaching) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  EXPECT_EQ(store->MarkDeleted("nope", FromUnixMillis(1)).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->SetCaching("m", "", true, FromUnixMillis(1)).ok());
  ASSERT_TRUE(store->MarkDeleted("m", FromUnixMillis(2)).ok());
  auto model = store->GetModel("m", FromUnixMillis(2));
  EXPECT_TRUE(model->deleted());
  EXPECT_FALSE(model->caching_enabled());
  EXPECT_TRUE(store->LoadSnapshot()->models["m"].deleted);
}

TEST(CoordinatorStore, RenewOfExpiredLeaseIsNotFound) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  v1::LeaseRequest request;
  request.set_name("m");
  request.set_version("1");
  request.set_holder("pod");
  request.set_ttl_seconds(10);
  auto lease = store->PutInUseLease(request, FromUnixMillis(1000), false);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->expires_unix_ms(), 11000);
  EXPECT_TRUE(store->PutInUseLease(request, FromUnixMillis(5000), true).ok());
  EXPECT_EQ(store->PutInUseLease(request, FromUnixMillis(16000), true).status().code(), absl::StatusCode::kNotFound);
}

TEST(CoordinatorStore, PendingCommandsAreClaimedOnceAndAnswerIsIdempotent) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->RecordHello(Hello("n", "v"), FromUnixMillis(1)).ok());
  v1::UsageReport report;
  *report.add_models() = Usage("m", "1", 77, 1);
  ASSERT_TRUE(store->ApplyUsage("n", "v", report, FromUnixMillis(1)).ok());
  v1::Command command;
  command.mutable_purge()->set_name("m");
  command.mutable_purge()->set_version("1");
  command.mutable_purge()->set_reason("unused: old");
  auto queued = store->EnqueueCommand("v", command, FromUnixMillis(2));
  ASSERT_TRUE(queued.ok());
  EXPECT_TRUE(*store->HasOpenPurge("v", "m", "1"));
  auto claimed = store->ClaimPending("v", "n", FromUnixMillis(3));
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].id(), queued->id());
  EXPECT_TRUE(store->ClaimPending("v", "other", FromUnixMillis(3))->empty());

  v1::CommandResult result;
  result.set_command_id(queued->id());
  result.set_bytes_freed(77);
  ASSERT_TRUE(store->RecordResult("n", result, FromUnixMillis(4)).ok());
  ASSERT_TRUE(store->RecordResult("n", result, FromUnixMillis(5)).ok());  // duplicate answer
  auto audit = store->Audit(10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].bytes_freed, 77u);
  EXPECT_EQ((*audit)[0].reason, "unused: old");
  EXPECT_TRUE(store->LoadSnapshot()->copies.empty());
  EXPECT_FALSE(*store->HasOpenPurge("v", "m", "1"));
}

TEST(CoordinatorStore, RestartKeepsStateAndReturnsSentCommandsToPending) {
  TempDatabase temp;
  std::string command_id;
  {
    auto store = *CoordinatorStore::Open(temp.Path(), false);
    ASSERT_TRUE(store->SetCaching("m", "", true, FromUnixMillis(1)).ok());
    ASSERT_TRUE(store->SetPin("m", "1", true, FromUnixMillis(1)).ok());
    ASSERT_TRUE(store->RecordHello(Hello("n", "v"), FromUnixMillis(1)).ok());
    v1::UsageReport report;
    report.set_full(true);
    *report.add_models() = Usage("m", "1", 50, 9);
    ASSERT_TRUE(store->ApplyUsage("n", "v", report, FromUnixMillis(1)).ok());
    v1::Command command;
    command.mutable_prefetch()->set_name("m");
    command.mutable_prefetch()->set_version("2");
    command.mutable_prefetch()->set_source("file:///x");
    command_id = store->EnqueueCommand("v", command, FromUnixMillis(2))->id();
    ASSERT_EQ(store->ClaimPending("v", "n", FromUnixMillis(3))->size(), 1u);
  }
  auto store = CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->ResetConnections().ok());
  auto model = (*store)->GetModel("m", FromUnixMillis(4));
  ASSERT_TRUE(model.ok());
  EXPECT_TRUE(model->caching_enabled());
  ASSERT_EQ(model->versions_size(), 1);
  EXPECT_TRUE(model->versions(0).pinned());
  EXPECT_EQ(model->cached_bytes(), 50u);
  auto nodes = (*store)->Nodes();
  ASSERT_EQ(nodes->nodes_size(), 1);
  EXPECT_FALSE(nodes->nodes(0).connected());
  auto claimed = (*store)->ClaimPending("v", "n", FromUnixMillis(5));
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].id(), command_id);
  EXPECT_EQ((*claimed)[0].prefetch().source(), "file:///x");
}

TEST(CoordinatorStore, DisconnectReturnsThatNodesCommandsToPending) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->RecordHello(Hello("a", "v"), FromUnixMillis(1)).ok());
  v1::Command command;
  command.mutable_purge()->set_name("m");
  command.mutable_purge()->set_version("1");
  ASSERT_TRUE(store->EnqueueCommand("v", command, FromUnixMillis(1)).ok());
  ASSERT_EQ(store->ClaimPending("v", "a", FromUnixMillis(2))->size(), 1u);
  ASSERT_TRUE(store->RecordDisconnect("a", FromUnixMillis(3)).ok());
  EXPECT_EQ(store->ClaimPending("v", "b", FromUnixMillis(4))->size(), 1u);
}

TEST(CoordinatorStore, BatchAppliesReportsOfManyNodesInOrder) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->RecordHello(Hello("node-a", "vol-1"), FromUnixMillis(1)).ok());
  ASSERT_TRUE(store->RecordHello(Hello("node-b", "vol-2"), FromUnixMillis(1)).ok());
  v1::UsageReport full_a;
  full_a.set_full(true);
  *full_a.add_models() = Usage("a", "1", 10, 1);
  *full_a.add_models() = Usage("b", "1", 20, 1);
  v1::UsageReport full_b;
  full_b.set_full(true);
  *full_b.add_models() = Usage("a", "1", 10, 1);
  v1::UsageReport delta_a;  // after full_a: takes "a" away from node-a only
  delta_a.add_removed()->set_name("a");
  delta_a.mutable_removed(0)->set_version("1");
  std::vector<UsageUpdate> updates = {{"node-a", "vol-1", &full_a},
                                      {"node-b", "vol-2", &full_b},
                                      {"node-a", "vol-1", &delta_a}};
  ASSERT_TRUE(store->ApplyUsageBatch(updates, FromUnixMillis(2)).ok());
  auto copies = store->LoadSnapshot()->copies;
  ASSERT_EQ(copies.size(), 2u);
  EXPECT_EQ(copies[0].volume_id + "/" + copies[0].name, "vol-1/b");
  EXPECT_EQ(copies[1].volume_id + "/" + copies[1].name, "vol-2/a");
  EXPECT_TRUE(store->GetModel("b", FromUnixMillis(3)).ok()) << "models learned from a batch join the registry";
}

// Purges `name`@`version` on volume "v" through node "n" and records the agent's answer.
void PurgeAndAnswer(CoordinatorStore& store, const std::string& name, const std::string& version,
                    int code, uint64_t freed, int64_t now_ms) {
  v1::UsageReport report;
  *report.add_models() = Usage(name, version, freed, 1);
  ASSERT_TRUE(store.ApplyUsage("n", "v", report, FromUnixMillis(now_ms)).ok());
  v1::Command command;
  command.mutable_purge()->set_name(name);
  command.mutable_purge()->set_version(version);
  command.mutable_purge()->set_reason("unused: last access 3d ago, older than 1d");
  auto queued = store.EnqueueCommand("v", command, FromUnixMillis(now_ms));
  ASSERT_TRUE(queued.ok());
  ASSERT_TRUE(store.ClaimPending("v", "n", FromUnixMillis(now_ms)).ok());
  v1::CommandResult result;
  result.set_command_id(queued->id());
  result.set_code(code);
  result.set_bytes_freed(freed);
  ASSERT_TRUE(store.RecordResult("n", result, FromUnixMillis(now_ms)).ok());
}

TEST(CoordinatorStore, LeasesOfAnAgentGoneLongerThanTheGraceStopCounting) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  constexpr int64_t kMinute = 60'000;
  ASSERT_TRUE(store->RecordHello(Hello("dead", "v"), FromUnixMillis(0)).ok());
  ASSERT_TRUE(store->RecordHello(Hello("alive", "v"), FromUnixMillis(0)).ok());
  v1::UsageReport leased;
  leased.set_full(true);
  *leased.add_models() = Usage("m", "1", 10, 0, /*leases=*/2);
  leased.mutable_models(0)->add_lease_holders("pod team-a/server-1");
  leased.mutable_models(0)->add_lease_holders("job-7");
  ASSERT_TRUE(store->ApplyUsage("dead", "v", leased, FromUnixMillis(0)).ok());
  ASSERT_TRUE(store->RecordDisconnect("dead", FromUnixMillis(1)).ok());
  auto leases_now = [&] { return store->LoadSnapshot()->copies.at(0).agent_leases; };
  auto holders_now = [&] { return store->LoadSnapshot()->copies.at(0).lease_holders; };

  v1::UsageReport heartbeat;  // the live agent keeps reporting: its clock is "now"
  ASSERT_TRUE(store->ApplyUsage("alive", "v", heartbeat, FromUnixMillis(10 * kMinute)).ok());
  EXPECT_EQ(leases_now(), 2u) << "within the grace the dead agent's pods may still hold it";
  EXPECT_EQ(holders_now(), (std::set<std::string>{"job-7", "pod team-a/server-1"}));
  ASSERT_TRUE(store->ApplyUsage("alive", "v", heartbeat, FromUnixMillis(16 * kMinute)).ok());
  EXPECT_EQ(leases_now(), 0u) << "gone longer than the grace: its leases have expired";
  EXPECT_TRUE(holders_now().empty()) << "and so have their holders";

  // It comes back and reports its leases again: they count again.
  ASSERT_TRUE(store->RecordHello(Hello("dead", "v"), FromUnixMillis(17 * kMinute)).ok());
  ASSERT_TRUE(store->ApplyUsage("dead", "v", leased, FromUnixMillis(17 * kMinute)).ok());
  EXPECT_EQ(leases_now(), 2u);
}

TEST(CoordinatorStore, AuditIsNewestFirstAndFiltersByModel) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->RecordHello(Hello("n", "v"), FromUnixMillis(1)).ok());
  ASSERT_NO_FATAL_FAILURE(PurgeAndAnswer(*store, "llama", "1", 0, 100, 10));
  ASSERT_NO_FATAL_FAILURE(PurgeAndAnswer(*store, "bert", "1", 0, 200, 20));
  ASSERT_NO_FATAL_FAILURE(PurgeAndAnswer(*store, "llama", "2", 0, 300, 30));

  auto all = store->Audit(10);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].bytes_freed, 300u);
  EXPECT_EQ((*all)[0].at_unix_ms, 30);
  EXPECT_EQ((*all)[0].node_name, "n");
  EXPECT_EQ((*all)[0].reason, "unused: last access 3d ago, older than 1d");
  EXPECT_EQ((*all)[2].name, "llama");
  EXPECT_EQ((*all)[2].version, "1");

  auto llama = store->Audit(10, "llama");
  ASSERT_TRUE(llama.ok());
  ASSERT_EQ(llama->size(), 2u);
  EXPECT_EQ((*llama)[0].version, "2");
  EXPECT_EQ((*llama)[1].version, "1");
  EXPECT_EQ(store->Audit(1, "llama")->size(), 1u);
  EXPECT_TRUE(store->Audit(10, "llam")->empty());
}

TEST(CoordinatorStore, RefusedPurgeIsNotAuditedAndKeepsTheCopy) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->RecordHello(Hello("n", "v"), FromUnixMillis(1)).ok());
  // The agent found a live lease of its own: FAILED_PRECONDITION.
  ASSERT_NO_FATAL_FAILURE(PurgeAndAnswer(*store, "m", "1", 9, 0, 10));
  EXPECT_TRUE(store->Audit(10)->empty());
  ASSERT_EQ(store->LoadSnapshot()->copies.size(), 1u);
  EXPECT_FALSE(*store->HasOpenPurge("v", "m", "1"));  // a later pass may try again
}

TEST(CoordinatorStore, SourcesAreRegisteredPerVersionAndTravelWithThePolicy) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  auto set = store->SetSource("llama", "v3", "s3://models/llama/v3/", SourceChange::kSet, "ops", FromUnixMillis(5));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->versions_size(), 1);
  EXPECT_EQ(set->versions(0).source(), "s3://models/llama/v3/");
  // Registering a source does not enable caching: a new model gets the default.
  EXPECT_FALSE(set->caching_enabled());
  EXPECT_FALSE(set->versions(0).caching_enabled());

  auto policy = store->CachingPolicy();
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->sources_included());
  ASSERT_EQ(policy->sources_size(), 1);
  EXPECT_EQ(policy->sources(0).name(), "llama");
  EXPECT_EQ(policy->sources(0).version(), "v3");
  EXPECT_EQ(policy->sources(0).source(), "s3://models/llama/v3/");

  // A version reported by an agent has no source until someone registers one.
  ASSERT_TRUE(store->RecordHello(Hello("n", "vol"), FromUnixMillis(6)).ok());
  v1::UsageReport report;
  *report.add_models() = Usage("llama", "v4", 1, 1);
  ASSERT_TRUE(store->ApplyUsage("n", "vol", report, FromUnixMillis(6)).ok());
  auto model = store->GetModel("llama", FromUnixMillis(7));
  ASSERT_EQ(model->versions_size(), 2);
  EXPECT_EQ(model->versions(1).version(), "v4");
  EXPECT_EQ(model->versions(1).source(), "");
  EXPECT_EQ(store->CachingPolicy()->sources_size(), 1);
}

TEST(CoordinatorStore, AVersionOutsideTheModelsPrefixIsRefusedAndNothingChanges) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->SetSourcePrefix("llama", "s3://models/llama/", "admin", FromUnixMillis(1)).ok());
  auto refused = store->SetSource("llama", "v4", "http://attacker.example/w.bin",
                                  SourceChange::kSet, "ops", FromUnixMillis(2));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("s3://models/llama/"), absl::string_view::npos)
      << refused.status();
  auto model = store->GetModel("llama", FromUnixMillis(3));
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->source_prefix(), "s3://models/llama/");
  EXPECT_EQ(model->versions_size(), 0) << "a refused registration creates nothing";
  EXPECT_TRUE(store->SetSource("llama", "v4", "s3://models/llama/v4/", SourceChange::kSet, "ops", FromUnixMillis(4))
                  .ok());
  // Cleared: any source again.
  ASSERT_TRUE(store->SetSourcePrefix("llama", "", "admin", FromUnixMillis(5)).ok());
  EXPECT_EQ(store->GetModel("llama", FromUnixMillis(6))->source_prefix(), "");
  EXPECT_TRUE(
      store->SetSource("llama", "v5", "http://mirror/llama/v5/", SourceChange::kSet, "ops", FromUnixMillis(7)).ok());
}

TEST(CoordinatorStore, RegisterOnlyKeepsAnotherRegisteredSource) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(
      store->SetSource("m", "1", "http://h/m/", SourceChange::kRegisterOnly, "ops", FromUnixMillis(1)).ok());
  EXPECT_EQ(store->SetSource("m", "1", "http://other/m/", SourceChange::kRegisterOnly, "ops", FromUnixMillis(2))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store->SetSource("m", "1", "http://h/m/", SourceChange::kRegisterOnly, "ops", FromUnixMillis(3)).ok());
  auto entry = store->GetSourceEntry("m", "1");
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->source, "http://h/m/");
  EXPECT_FALSE(store->GetSourceEntry("m", "2")->source.has_value());
  EXPECT_FALSE(store->GetSourceEntry("unknown", "1")->source.has_value());
}

TEST(CoordinatorStore, SourceChangesAreAuditedWithWhoMadeThem) {
  TempDatabase temp;
  auto store = *CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store->SetSourcePrefix("llama", "s3://models/llama/", "alice", FromUnixMillis(10)).ok());
  ASSERT_TRUE(
      store->SetSource("llama", "v3", "s3://models/llama/v3/", SourceChange::kSet, "bob", FromUnixMillis(20)).ok());
  // Setting the same source again changes nothing and records nothing.
  ASSERT_TRUE(
      store->SetSource("llama", "v3", "s3://models/llama/v3/", SourceChange::kSet, "bob", FromUnixMillis(25)).ok());
  ASSERT_TRUE(store->SetSource("llama", "v3", "s3://models/llama/v3-fixed/", SourceChange::kSet,
                               "carol", FromUnixMillis(30))
                  .ok());
  ASSERT_TRUE(store->RecordHello(Hello("n", "v"), FromUnixMillis(1)).ok());
  ASSERT_NO_FATAL_FAILURE(PurgeAndAnswer(*store, "llama", "v1", 0, 100, 40));

  auto all = store->Audit(10, "llama");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].kind, "purge");
  EXPECT_EQ((*all)[1].kind, "source");
  EXPECT_EQ((*all)[1].principal, "carol");
  EXPECT_EQ((*all)[1].version, "v3");
  EXPECT_EQ((*all)[1].reason, "source s3://models/llama/v3-fixed/ (was s3://models/llama/v3/)");
  EXPECT_EQ((*all)[2].reason, "source s3://models/llama/v3/ (was not registered)");
  EXPECT_EQ((*all)[2].principal, "bob");
  EXPECT_EQ((*all)[3].kind, "source-prefix");
  EXPECT_EQ((*all)[3].version, "");
  EXPECT_EQ((*all)[3].reason, "source prefix s3://models/llama/ (was none)");
  EXPECT_EQ((*all)[3].principal, "alice");
  EXPECT_EQ(store->Audit(10, "", "source")->size(), 2u);
  EXPECT_EQ(store->Audit(10, "", "purge")->size(), 1u);
}

TEST(CoordinatorStore, RestartKeepsTheRegistrysSources) {
  TempDatabase temp;
  {
    auto store = *CoordinatorStore::Open(temp.Path(), false);
    ASSERT_TRUE(store->SetSourcePrefix("llama", "s3://models/llama/", "ops", FromUnixMillis(1)).ok());
    ASSERT_TRUE(
        store->SetSource("llama", "v3", "s3://models/llama/v3/", SourceChange::kSet, "ops", FromUnixMillis(2)).ok());
  }
  auto store = CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store.ok()) << store.status();
  auto model = (*store)->GetModel("llama", FromUnixMillis(3));
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->source_prefix(), "s3://models/llama/");
  ASSERT_EQ(model->versions_size(), 1);
  EXPECT_EQ(model->versions(0).source(), "s3://models/llama/v3/");
  EXPECT_EQ((*store)->CachingPolicy()->sources_size(), 1);
}

TEST(CoordinatorStore, MigratingASchema3DatabaseKeepsItsPurgeAudit) {
  TempDatabase temp;
  {
    // What a coordinator from before sources left: schema 3 with one purge audited.
    auto db = Database::Open(temp.Path());
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(MigrateSchema(**db, 3).ok());
    ASSERT_TRUE((*db)->Execute(
        "INSERT INTO models(name, caching_enabled, created_ms, updated_ms) VALUES('m', 1, 1, 1);"
        "INSERT INTO versions(name, version, created_ms) VALUES('m', '1', 1);"
        "INSERT INTO purge_audit(at_ms, volume_id, name, version, reason, bytes_freed, "
        "node_name, command_id) VALUES(7, 'vol', 'm', '1', 'unused: old', 99, 'n', '3');")
                    .ok());
  }
  auto store = CoordinatorStore::Open(temp.Path(), false);
  ASSERT_TRUE(store.ok()) << store.status();
  auto audit = (*store)->Audit(10);
  ASSERT_TRUE(audit.ok()) << audit.status();
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].kind, "purge");
  EXPECT_EQ((*audit)[0].bytes_freed, 99u);
  EXPECT_EQ((*audit)[0].principal, "");
  // The version from before has no source: agents refuse it until one is registered.
  EXPECT_FALSE((*store)->GetSourceEntry("m", "1")->source.has_value());
}

}  // namespace
}  // namespace modelcache
