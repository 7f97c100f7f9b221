#include "coordinator/db/store.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/status_macros.h"
#include "coordinator/db/registry_sources.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

// Each entry is one migration; never edit a shipped one, append a new one.
constexpr const char* kMigrations[] = {
    // 1: base schema.
    R"sql(
CREATE TABLE models(
  name TEXT PRIMARY KEY,
  caching_enabled INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  pinned INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE TABLE versions(
  name TEXT NOT NULL REFERENCES models(name),
  version TEXT NOT NULL,
  caching_override INTEGER,
  pinned INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY(name, version));
CREATE TABLE volumes(
  volume_id TEXT PRIMARY KEY,
  capacity_bytes INTEGER NOT NULL DEFAULT 0,
  free_bytes INTEGER NOT NULL DEFAULT 0,
  quota_bytes INTEGER NOT NULL DEFAULT 0,
  updated_ms INTEGER NOT NULL);
CREATE TABLE agents(
  node_name TEXT PRIMARY KEY,
  volume_id TEXT NOT NULL,
  capacity_bytes INTEGER NOT NULL DEFAULT 0,
  free_bytes INTEGER NOT NULL DEFAULT 0,
  agent_version TEXT NOT NULL DEFAULT '',
  connected INTEGER NOT NULL DEFAULT 0,
  last_heartbeat_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE cache_reports(
  volume_id TEXT NOT NULL,
  node_name TEXT NOT NULL,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  state INTEGER NOT NULL,
  last_access_ms INTEGER NOT NULL,
  live_leases INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY(volume_id, node_name, name, version));
CREATE TABLE leases(
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  volume_id TEXT NOT NULL,
  holder TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY(name, version, volume_id, holder));
CREATE TABLE commands(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  volume_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  arg TEXT NOT NULL,
  state TEXT NOT NULL,
  node_name TEXT NOT NULL DEFAULT '',
  result_code INTEGER NOT NULL DEFAULT 0,
  result_message TEXT NOT NULL DEFAULT '',
  bytes_freed INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE TABLE purge_audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  volume_id TEXT NOT NULL,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  reason TEXT NOT NULL,
  bytes_freed INTEGER NOT NULL,
  node_name TEXT NOT NULL,
  command_id TEXT NOT NULL);
)sql",
    // 2: indexes for the policy loop and the dispatcher.
    R"sql(
CREATE INDEX cache_reports_by_copy ON cache_reports(volume_id, name, version);
CREATE INDEX cache_reports_by_node ON cache_reports(node_name);
CREATE INDEX commands_by_volume_state ON commands(volume_id, state);
)sql",
    // 3: the volumes each agent mounts as extraVolumes (reported, not served).
    R"sql(
CREATE TABLE agent_extra_volumes(
  node_name TEXT NOT NULL,
  volume_id TEXT NOT NULL,
  PRIMARY KEY(node_name, volume_id));
)sql",
    // 4: sources belong to the registry (a version's source, a model's source prefix); the
    // audit log records their changes too, with who made them.
    R"sql(
ALTER TABLE versions ADD COLUMN source TEXT;
ALTER TABLE models ADD COLUMN source_prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE purge_audit RENAME TO audit_log;
ALTER TABLE audit_log ADD COLUMN kind TEXT NOT NULL DEFAULT 'purge';
ALTER TABLE audit_log ADD COLUMN principal TEXT NOT NULL DEFAULT '';
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

int64_t AsInt(uint64_t value) { return static_cast<int64_t>(value); }

std::string StateName(int64_t state) {
  switch (state) {
    case v1::ModelUsage::FILLING: return "FILLING";
    case v1::ModelUsage::READY: return "READY";
    case v1::ModelUsage::PURGING: return "PURGING";
    default: return "UNKNOWN";
  }
}

// The aggregate of every agent's report of one copy. Leases reported by an agent that went
// away and has not been heard from for 15 minutes (longer than the agents' default lease TTL of
// 10 minutes, so its pods' leases would have expired) no longer count: otherwise a dead node
// would protect its models forever. "Now" is the newest heartbeat of any agent, so the rule
// runs on the agents' clock and a coordinator restart alone (every agent disconnected, none
// heard from since) drops no lease.
constexpr const char* kCopiesSql =
    "SELECT volume_id, name, version, MAX(size_bytes), MIN(state), MAX(last_access_ms), "
    "SUM(CASE WHEN node_name IN (SELECT node_name FROM agents WHERE connected=0 AND "
    "last_heartbeat_ms < (SELECT MAX(last_heartbeat_ms) FROM agents) - 900000) "
    "THEN 0 ELSE live_leases END), "
    "group_concat(node_name, ','), "
    // Draining: no agent serves the volume (it is only some agent's extra volume), so no agent
    // would run a purge command for it.
    "volume_id NOT IN (SELECT volume_id FROM agents) FROM cache_reports ";
constexpr const char* kCopiesGroup = " GROUP BY volume_id, name, version ORDER BY volume_id, name, version";

std::string VersionKey(std::string_view name, std::string_view version) {
  std::string key;
  key.reserve(name.size() + 1 + version.size());
  key.append(name).push_back('\0');
  key.append(version);
  return key;
}

std::vector<std::string> SplitNodes(const std::string& text) {
  std::vector<std::string> nodes;
  std::set<std::string> seen;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    size_t comma = text.find(',', start);
    std::string node = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!node.empty() && seen.insert(node).second) nodes.push_back(node);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return nodes;
}

}  // namespace

absl::Status MigrateSchema(Database& db, int target) {
  ASSIGN_OR_RETURN(int current, db.UserVersion());
  if (current > kSchemaVersion) {
    return absl::FailedPreconditionError(fmt::format(
        "database schema {} is newer than this coordinator's {}", current, kSchemaVersion));
  }
  for (int next = current + 1; next <= std::min(target, kSchemaVersion); ++next) {
    Transaction transaction(db);
    RETURN_IF_ERROR(transaction.status());
    RETURN_IF_ERROR(db.Execute(kMigrations[next - 1]));
    RETURN_IF_ERROR(db.Execute(fmt::format("PRAGMA user_version={}", next)));
    RETURN_IF_ERROR(transaction.Commit());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CoordinatorStore>> CoordinatorStore::Open(const std::string& path,
                                                                         bool default_caching) {
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(path));
  RETURN_IF_ERROR(MigrateSchema(*db));
  return std::unique_ptr<CoordinatorStore>(new CoordinatorStore(std::move(db), default_caching));
}

absl::Status CoordinatorStore::ResetConnections() {
  std::lock_guard lock(mutex_);
  Transaction transaction(*db_);
  RETURN_IF_ERROR(transaction.status());
  RETURN_IF_ERROR(db_->Execute("UPDATE agents SET connected=0"));
  RETURN_IF_ERROR(db_->Execute("UPDATE commands SET state='pending', node_name='' WHERE state='sent'"));
  return transaction.Commit();
}

absl::Status CoordinatorStore::RecordHello(const v1::AgentHello& hello, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Transaction transaction(*db_);
  RETURN_IF_ERROR(transaction.status());
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "INSERT INTO agents(node_name, volume_id, capacity_bytes, free_bytes, agent_version, "
        "connected, last_heartbeat_ms) VALUES(?1, ?2, ?3, ?4, ?5, 1, ?6) "
        "ON CONFLICT(node_name) DO UPDATE SET volume_id=?2, capacity_bytes=?3, free_bytes=?4, "
        "agent_version=?5, connected=1, last_heartbeat_ms=?6"));
    statement->Bind(1, hello.node_name()).Bind(2, hello.volume_id())
        .Bind(3, AsInt(hello.capacity_bytes())).Bind(4, AsInt(hello.free_bytes()))
        .Bind(5, hello.agent_version()).Bind(6, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "INSERT INTO volumes(volume_id, capacity_bytes, free_bytes, updated_ms) "
        "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(volume_id) DO UPDATE SET capacity_bytes=?2, "
        "free_bytes=?3, updated_ms=?4"));
    statement->Bind(1, hello.volume_id()).Bind(2, AsInt(hello.capacity_bytes()))
        .Bind(3, AsInt(hello.free_bytes())).Bind(4, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  {
    ASSIGN_OR_RETURN(auto statement,
                     db_->Prepare("DELETE FROM agent_extra_volumes WHERE node_name=?1"));
    statement->Bind(1, hello.node_name());
    RETURN_IF_ERROR(statement->Run());
  }
  for (const v1::ExtraVolume& extra : hello.extra_volumes()) {
    if (extra.volume_id().empty() || extra.volume_id() == hello.volume_id()) continue;
    {
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "INSERT OR IGNORE INTO agent_extra_volumes(node_name, volume_id) VALUES(?1, ?2)"));
      statement->Bind(1, hello.node_name()).Bind(2, extra.volume_id());
      RETURN_IF_ERROR(statement->Run());
    }
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "INSERT INTO volumes(volume_id, capacity_bytes, free_bytes, updated_ms) "
        "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(volume_id) DO UPDATE SET capacity_bytes=?2, "
        "free_bytes=?3, updated_ms=?4"));
    statement->Bind(1, extra.volume_id()).Bind(2, AsInt(extra.capacity_bytes()))
        .Bind(3, AsInt(extra.free_bytes())).Bind(4, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  {
    // A node that moved to another volume no longer speaks for the old one, unless it still
    // mounts it as an extra volume: then it goes on reporting the old volume's models (until
    // they are cleaned) in reports for that volume.
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "DELETE FROM cache_reports WHERE node_name=?1 AND volume_id<>?2 AND volume_id NOT IN "
        "(SELECT volume_id FROM agent_extra_volumes WHERE node_name=?1)"));
    statement->Bind(1, hello.node_name()).Bind(2, hello.volume_id());
    RETURN_IF_ERROR(statement->Run());
  }
  return transaction.Commit();
}

absl::Status CoordinatorStore::RecordDisconnect(std::string_view node_name, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Transaction transaction(*db_);
  RETURN_IF_ERROR(transaction.status());
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "UPDATE agents SET connected=0 WHERE node_name=?1"));
    statement->Bind(1, node_name);
    RETURN_IF_ERROR(statement->Run());
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "UPDATE commands SET state='pending', node_name='', updated_ms=?2 "
        "WHERE state='sent' AND node_name=?1"));
    statement->Bind(1, node_name).Bind(2, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  return transaction.Commit();
}

absl::Status CoordinatorStore::EnsureModel(std::string_view name, int64_t now_ms) {
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "INSERT OR IGNORE INTO models(name, caching_enabled, created_ms, updated_ms) "
      "VALUES(?1, ?2, ?3, ?3)"));
  statement->Bind(1, name).Bind(2, int64_t{default_caching_ ? 1 : 0}).Bind(3, now_ms);
  return statement->Run();
}

absl::Status CoordinatorStore::EnsureVersion(std::string_view name, std::string_view version,
                                             int64_t now_ms) {
  RETURN_IF_ERROR(EnsureModel(name, now_ms));
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "INSERT OR IGNORE INTO versions(name, version, created_ms) VALUES(?1, ?2, ?3)"));
  statement->Bind(1, name).Bind(2, version).Bind(3, now_ms);
  return statement->Run();
}

absl::Status CoordinatorStore::ApplyUsage(std::string_view node_name, std::string_view volume_id,
                                          const v1::UsageReport& report, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Transaction transaction(*db_);
  RETURN_IF_ERROR(transaction.status());
  std::vector<std::string> ensured;
  RETURN_IF_ERROR(ApplyUsageLocked(node_name, volume_id, report, now_ms, ensured));
  RETURN_IF_ERROR(transaction.Commit());
  known_versions_.insert(ensured.begin(), ensured.end());
  return absl::OkStatus();
}

absl::Status CoordinatorStore::ApplyUsageBatch(std::span<const UsageUpdate> updates,
                                               int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Transaction transaction(*db_);
  RETURN_IF_ERROR(transaction.status());
  std::vector<std::string> ensured;
  for (const UsageUpdate& update : updates) {
    RETURN_IF_ERROR(
        ApplyUsageLocked(update.node_name, update.volume_id, *update.report, now_ms, ensured));
  }
  RETURN_IF_ERROR(transaction.Commit());
  known_versions_.insert(ensured.begin(), ensured.end());
  return absl::OkStatus();
}

absl::Status CoordinatorStore::ApplyUsageLocked(std::string_view node_name,
                                                std::string_view volume_id,
                                                const v1::UsageReport& report, int64_t now_ms,
                                                std::vector<std::string>& ensured) {
  // A report of an extra volume speaks for that volume, not for the node's own file system.
  const bool own_volume = report.volume_id().empty();
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "UPDATE agents SET last_heartbeat_ms=?2, capacity_bytes=CASE WHEN ?3>0 THEN ?3 ELSE "
        "capacity_bytes END, free_bytes=CASE WHEN ?3>0 THEN ?4 ELSE free_bytes END "
        "WHERE node_name=?1"));
    statement->Bind(1, node_name).Bind(2, now_ms)
        .Bind(3, own_volume ? AsInt(report.capacity_bytes()) : int64_t{0})
        .Bind(4, AsInt(report.free_bytes()));
    RETURN_IF_ERROR(statement->Run());
  }
  if (report.capacity_bytes() > 0) {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "UPDATE volumes SET capacity_bytes=?2, free_bytes=?3, updated_ms=?4 WHERE volume_id=?1"));
    statement->Bind(1, volume_id).Bind(2, AsInt(report.capacity_bytes()))
        .Bind(3, AsInt(report.free_bytes())).Bind(4, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  if (report.full()) {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "DELETE FROM cache_reports WHERE node_name=?1 AND volume_id=?2"));
    statement->Bind(1, node_name).Bind(2, volume_id);
    RETURN_IF_ERROR(statement->Run());
  }
  for (const v1::ModelKey& removed : report.removed()) {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "DELETE FROM cache_reports WHERE node_name=?1 AND volume_id=?2 AND name=?3 AND "
        "version=?4"));
    statement->Bind(1, node_name).Bind(2, volume_id).Bind(3, removed.name())
        .Bind(4, removed.version());
    RETURN_IF_ERROR(statement->Run());
  }
  for (const v1::ModelUsage& model : report.models()) {
    // Registry rows are never deleted, so a version known once stays known: skipping the two
    // INSERT OR IGNOREs per row makes a full report of many models much cheaper.
    std::string key = VersionKey(model.name(), model.version());
    if (!known_versions_.contains(key)) {
      RETURN_IF_ERROR(EnsureVersion(model.name(), model.version(), now_ms));
      ensured.push_back(std::move(key));  // known once the transaction commits
    }
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "INSERT INTO cache_reports(volume_id, node_name, name, version, size_bytes, state, "
        "last_access_ms, live_leases, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT(volume_id, node_name, name, version) DO UPDATE SET size_bytes=?5, "
        "state=?6, last_access_ms=?7, live_leases=?8, updated_ms=?9"));
    statement->Bind(1, volume_id).Bind(2, node_name).Bind(3, model.name())
        .Bind(4, model.version()).Bind(5, AsInt(model.size_bytes()))
        .Bind(6, int64_t{model.state()}).Bind(7, model.last_access_unix_ms())
        .Bind(8, int64_t{model.live_leases()}).Bind(9, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ModelInfo> CoordinatorStore::SetCaching(std::string_view name,
                                                           std::string_view version, bool enabled,
                                                           int64_t now_ms) {
  std::lock_guard lock(mutex_);
  {
    Transaction transaction(*db_);
    RETURN_IF_ERROR(transaction.status());
    RETURN_IF_ERROR(EnsureModel(name, now_ms));
    if (version.empty()) {
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "UPDATE models SET caching_enabled=?2, deleted=CASE WHEN ?2=1 THEN 0 ELSE deleted END,"
          " updated_ms=?3 WHERE name=?1"));
      statement->Bind(1, name).Bind(2, int64_t{enabled ? 1 : 0}).Bind(3, now_ms);
      RETURN_IF_ERROR(statement->Run());
    } else {
      RETURN_IF_ERROR(EnsureVersion(name, version, now_ms));
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "UPDATE versions SET caching_override=?3 WHERE name=?1 AND version=?2"));
      statement->Bind(1, name).Bind(2, version).Bind(3, int64_t{enabled ? 1 : 0});
      RETURN_IF_ERROR(statement->Run());
    }
    RETURN_IF_ERROR(transaction.Commit());
  }
  return GetModelLocked(name, now_ms);
}

absl::StatusOr<v1::ModelInfo> CoordinatorStore::SetPin(std::string_view name,
                                                       std::string_view version, bool pinned,
                                                       int64_t now_ms) {
  std::lock_guard lock(mutex_);
  {
    Transaction transaction(*db_);
    RETURN_IF_ERROR(transaction.status());
    RETURN_IF_ERROR(EnsureModel(name, now_ms));
    if (version.empty()) {
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "UPDATE models SET pinned=?2, updated_ms=?3 WHERE name=?1"));
      statement->Bind(1, name).Bind(2, int64_t{pinned ? 1 : 0}).Bind(3, now_ms);
      RETURN_IF_ERROR(statement->Run());
    } else {
      RETURN_IF_ERROR(EnsureVersion(name, version, now_ms));
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "UPDATE versions SET pinned=?3 WHERE name=?1 AND version=?2"));
      statement->Bind(1, name).Bind(2, version).Bind(3, int64_t{pinned ? 1 : 0});
      RETURN_IF_ERROR(statement->Run());
    }
    RETURN_IF_ERROR(transaction.Commit());
  }
  return GetModelLocked(name, now_ms);
}

absl::Status CoordinatorStore::MarkDeleted(std::string_view name, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "UPDATE models SET deleted=1, caching_enabled=0, updated_ms=?2 WHERE name=?1"));
  statement->Bind(1, name).Bind(2, now_ms);
  RETURN_IF_ERROR(statement->Run());
  if (db_->Changes() == 0) {
    return absl::NotFoundError(fmt::format("model {}: not in the registry", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ModelInfo> CoordinatorStore::GetModel(std::string_view name, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  return GetModelLocked(name, now_ms);
}

absl::StatusOr<v1::ModelInfo> CoordinatorStore::GetModelLocked(std::string_view name,
                                                               int64_t now_ms) {
  v1::ModelInfo info;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT caching_enabled, deleted, pinned, source_prefix FROM models WHERE name=?1"));
    statement->Bind(1, name);
    ASSIGN_OR_RETURN(bool found, statement->Step());
    if (!found) return absl::NotFoundError(fmt::format("model {}: not in the registry", name));
    info.set_name(std::string(name));
    info.set_caching_enabled(statement->Int(0) != 0 && statement->Int(1) == 0);
    info.set_deleted(statement->Int(1) != 0);
    info.set_pinned(statement->Int(2) != 0);
    info.set_source_prefix(statement->Text(3));
  }
  std::map<std::string, v1::VersionInfo*> versions;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT version, caching_override, pinned, source FROM versions WHERE name=?1 "
        "ORDER BY version"));
    statement->Bind(1, name);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      v1::VersionInfo* version = info.add_versions();
      version->set_version(statement->Text(0));
      version->set_caching_overridden(!statement->IsNull(1));
      bool enabled = statement->IsNull(1) ? info.caching_enabled() : statement->Int(1) != 0;
      version->set_caching_enabled(enabled && !info.deleted());
      version->set_pinned(statement->Int(2) != 0);
      if (!statement->IsNull(3)) version->set_source(statement->Text(3));
      versions[version->version()] = version;
    }
  }
  std::map<std::pair<std::string, std::string>, uint32_t> coordinator_leases;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT version, volume_id, COUNT(*) FROM leases WHERE name=?1 AND expires_ms>?2 "
        "GROUP BY version, volume_id"));
    statement->Bind(1, name).Bind(2, now_ms);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      coordinator_leases[{statement->Text(0), statement->Text(1)}] +=
          static_cast<uint32_t>(statement->Int(2));
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement,
                     db_->Prepare(std::string(kCopiesSql) + "WHERE name=?1" + kCopiesGroup));
    statement->Bind(1, name);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      auto found = versions.find(statement->Text(2));
      if (found == versions.end()) continue;
      v1::CacheCopy* copy = found->second->add_copies();
      copy->set_volume_id(statement->Text(0));
      copy->set_size_bytes(static_cast<uint64_t>(statement->Int(3)));
      copy->set_state(StateName(statement->Int(4)));
      copy->set_last_access_unix_ms(statement->Int(5));
      uint32_t leases = static_cast<uint32_t>(statement->Int(6));
      leases += coordinator_leases[{found->first, copy->volume_id()}];
      leases += coordinator_leases[{found->first, ""}];
      copy->set_live_leases(leases);
      for (std::string& node : SplitNodes(statement->Text(7))) copy->add_nodes(std::move(node));
      info.set_cached_bytes(info.cached_bytes() + copy->size_bytes());
    }
  }
  return info;
}

absl::StatusOr<std::vector<v1::ModelInfo>> CoordinatorStore::ListModels(int64_t now_ms) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare("SELECT name FROM models ORDER BY name"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      names.push_back(statement->Text(0));
    }
  }
  std::vector<v1::ModelInfo> models;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(v1::ModelInfo info, GetModelLocked(name, now_ms));
    models.push_back(std::move(info));
  }
  return models;
}

absl::StatusOr<v1::CachingPolicy> CoordinatorStore::CachingPolicy() {
  std::lock_guard lock(mutex_);
  v1::CachingPolicy policy;
  policy.set_default_enabled(default_caching_);
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT name, caching_enabled AND NOT deleted FROM models ORDER BY name"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      v1::CachingRule* rule = policy.add_rules();
      rule->set_name(statement->Text(0));
      rule->set_enabled(statement->Int(1) != 0);
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT v.name, v.version, v.caching_override AND NOT m.deleted FROM versions v JOIN "
        "models m ON m.name=v.name WHERE v.caching_override IS NOT NULL ORDER BY v.name, "
        "v.version"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      v1::CachingRule* rule = policy.add_rules();
      rule->set_name(statement->Text(0));
      rule->set_version(statement->Text(1));
      rule->set_enabled(statement->Int(2) != 0);
    }
  }
  RETURN_IF_ERROR(AddRegisteredSources(*db_, policy));
  return policy;
}

absl::StatusOr<v1::ModelInfo> CoordinatorStore::SetSource(std::string_view name,
                                                          std::string_view version,
                                                          std::string_view source,
                                                          SourceChange change,
                                                          std::string_view principal,
                                                          int64_t now_ms) {
  std::lock_guard lock(mutex_);
  {
    Transaction transaction(*db_);
    RETURN_IF_ERROR(transaction.status());
    ASSIGN_OR_RETURN(SourceEntry entry, ReadSourceEntry(*db_, name, version));
    ASSIGN_OR_RETURN(bool write, DecideSourceChange(name, version, source, entry, change));
    if (write) {
      RETURN_IF_ERROR(EnsureVersion(name, version, now_ms));
      RETURN_IF_ERROR(WriteVersionSource(*db_, name, version, source));
      RETURN_IF_ERROR(AppendRegistryAudit(
          *db_, now_ms, name, version, "source",
          fmt::format("source {} (was {})", source, entry.source.value_or("not registered")),
          principal));
      RETURN_IF_ERROR(transaction.Commit());
    }
  }
  return GetModelLocked(name, now_ms);
}

absl::StatusOr<v1::ModelInfo> CoordinatorStore::SetSourcePrefix(std::string_view name,
                                                                std::string_view prefix,
                                                                std::string_view principal,
                                                                int64_t now_ms) {
  std::lock_guard lock(mutex_);
  {
    Transaction transaction(*db_);
    RETURN_IF_ERROR(transaction.status());
    ASSIGN_OR_RETURN(SourceEntry entry, ReadSourceEntry(*db_, name, ""));
    RETURN_IF_ERROR(EnsureModel(name, now_ms));
    if (entry.prefix != prefix) {
      RETURN_IF_ERROR(WriteSourcePrefix(*db_, name, prefix, now_ms));
      RETURN_IF_ERROR(AppendRegistryAudit(
          *db_, now_ms, name, "", "source-prefix",
          fmt::format("source prefix {} (was {})", prefix.empty() ? "cleared" : prefix,
                      entry.prefix.empty() ? "none" : entry.prefix),
          principal));
    }
    RETURN_IF_ERROR(transaction.Commit());
  }
  return GetModelLocked(name, now_ms);
}

absl::StatusOr<SourceEntry> CoordinatorStore::GetSourceEntry(std::string_view name,
                                                             std::string_view version) {
  std::lock_guard lock(mutex_);
  return ReadSourceEntry(*db_, name, version);
}

absl::StatusOr<v1::UsageResponse> CoordinatorStore::Usage(uint64_t default_quota_bytes) {
  std::lock_guard lock(mutex_);
  v1::UsageResponse response;
  std::map<std::string, v1::VolumeUsage*> volumes;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT volume_id, capacity_bytes, free_bytes, quota_bytes FROM volumes "
        "ORDER BY volume_id"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      v1::VolumeUsage* volume = response.add_volumes();
      volume->set_volume_id(statement->Text(0));
      volume->set_capacity_bytes(static_cast<uint64_t>(statement->Int(1)));
      volume->set_free_bytes(static_cast<uint64_t>(statement->Int(2)));
      uint64_t quota = static_cast<uint64_t>(statement->Int(3));
      volume->set_quota_bytes(quota > 0 ? quota : default_quota_bytes);
      volumes[volume->volume_id()] = volume;
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(std::string(kCopiesSql) + kCopiesGroup));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      auto found = volumes.find(statement->Text(0));
      if (found == volumes.end()) continue;
      found->second->set_used_bytes(found->second->used_bytes() +
                                    static_cast<uint64_t>(statement->Int(3)));
      found->second->set_model_count(found->second->model_count() + 1);
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT volume_id, node_name FROM agents ORDER BY node_name"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      auto found = volumes.find(statement->Text(0));
      if (found != volumes.end()) found->second->add_nodes(statement->Text(1));
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT volume_id, node_name FROM agent_extra_volumes ORDER BY node_name"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      auto found = volumes.find(statement->Text(0));
      if (found != volumes.end()) found->second->add_extra_nodes(statement->Text(1));
    }
  }
  return response;
}

absl::StatusOr<v1::NodesResponse> CoordinatorStore::Nodes() {
  std::lock_guard lock(mutex_);
  v1::NodesResponse response;
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "SELECT node_name, volume_id, agent_version, connected, last_heartbeat_ms, "
      "capacity_bytes, free_bytes FROM agents ORDER BY node_name"));
  for (;;) {
    ASSIGN_OR_RETURN(bool row, statement->Step());
    if (!row) break;
    v1::NodeInfo* node = response.add_nodes();
    node->set_node_name(statement->Text(0));
    node->set_volume_id(statement->Text(1));
    node->set_agent_version(statement->Text(2));
    node->set_connected(statement->Int(3) != 0);
    node->set_last_heartbeat_unix_ms(statement->Int(4));
    node->set_capacity_bytes(static_cast<uint64_t>(statement->Int(5)));
    node->set_free_bytes(static_cast<uint64_t>(statement->Int(6)));
  }
  return response;
}

absl::StatusOr<Snapshot> CoordinatorStore::LoadSnapshot() {
  std::lock_guard lock(mutex_);
  Snapshot snapshot;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(std::string(kCopiesSql) + kCopiesGroup));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      CachedCopy copy;
      copy.volume_id = statement->Text(0);
      copy.name = statement->Text(1);
      copy.version = statement->Text(2);
      copy.size_bytes = static_cast<uint64_t>(statement->Int(3));
      copy.ready = statement->Int(4) == v1::ModelUsage::READY;
      copy.last_access = FromUnixMillis(statement->Int(5));
      copy.agent_leases = static_cast<uint32_t>(statement->Int(6));
      copy.draining = statement->Int(8) != 0;
      snapshot.copies.push_back(std::move(copy));
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT name, deleted, pinned FROM models WHERE deleted=1 OR pinned=1"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      RegistryModel& model = snapshot.models[statement->Text(0)];
      model.deleted = statement->Int(1) != 0;
      model.pinned = statement->Int(2) != 0;
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT name, version FROM versions WHERE pinned=1"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      snapshot.models[statement->Text(0)].pinned_versions.insert(statement->Text(1));
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT name, version, volume_id, holder, expires_ms FROM leases"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      snapshot.leases.push_back(LeaseRecord{statement->Text(0), statement->Text(1),
                                            statement->Text(2), statement->Text(3),
                                            FromUnixMillis(statement->Int(4))});
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT volume_id, quota_bytes FROM volumes WHERE quota_bytes>0"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      snapshot.volume_quota[statement->Text(0)] = static_cast<uint64_t>(statement->Int(1));
    }
  }
  return snapshot;
}

absl::StatusOr<v1::Lease> CoordinatorStore::PutLease(const v1::LeaseRequest& request,
                                                     int64_t now_ms, bool renew_only) {
  std::lock_guard lock(mutex_);
  const int64_t ttl_ms = int64_t{request.ttl_seconds() == 0 ? 300u : request.ttl_seconds()} * 1000;
  Transaction transaction(*db_);
  RETURN_IF_ERROR(transaction.status());
  if (renew_only) {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT 1 FROM leases WHERE name=?1 AND version=?2 AND volume_id=?3 AND holder=?4 AND "
        "expires_ms>?5"));
    statement->Bind(1, request.name()).Bind(2, request.version()).Bind(3, request.volume_id())
        .Bind(4, request.holder()).Bind(5, now_ms);
    ASSIGN_OR_RETURN(bool live, statement->Step());
    if (!live) {
      return absl::NotFoundError(fmt::format("lease of {}@{} for {}: expired or never acquired",
                                             request.name(), request.version(),
                                             request.holder()));
    }
  }
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "INSERT INTO leases(name, version, volume_id, holder, expires_ms) VALUES(?1, ?2, ?3, "
        "?4, ?5) ON CONFLICT(name, version, volume_id, holder) DO UPDATE SET expires_ms=?5"));
    statement->Bind(1, request.name()).Bind(2, request.version()).Bind(3, request.volume_id())
        .Bind(4, request.holder()).Bind(5, now_ms + ttl_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  {
    // Expired leases are only history; drop them while we hold the lock anyway.
    ASSIGN_OR_RETURN(auto statement, db_->Prepare("DELETE FROM leases WHERE expires_ms<=?1"));
    statement->Bind(1, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  RETURN_IF_ERROR(transaction.Commit());
  v1::Lease lease;
  lease.set_name(request.name());
  lease.set_version(request.version());
  lease.set_holder(request.holder());
  lease.set_volume_id(request.volume_id());
  lease.set_expires_unix_ms(now_ms + ttl_ms);
  return lease;
}

absl::StatusOr<v1::Lease> CoordinatorStore::ReleaseLease(const v1::LeaseRequest& request) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "DELETE FROM leases WHERE name=?1 AND version=?2 AND volume_id=?3 AND holder=?4"));
  statement->Bind(1, request.name()).Bind(2, request.version()).Bind(3, request.volume_id())
      .Bind(4, request.holder());
  RETURN_IF_ERROR(statement->Run());
  v1::Lease lease;
  lease.set_name(request.name());
  lease.set_version(request.version());
  lease.set_holder(request.holder());
  lease.set_volume_id(request.volume_id());
  return lease;
}

absl::StatusOr<v1::Command> CoordinatorStore::EnqueueCommand(std::string_view volume_id,
                                                             v1::Command command,
                                                             int64_t now_ms) {
  std::lock_guard lock(mutex_);
  std::string kind, name, version, arg;
  if (command.has_purge()) {
    kind = "purge";
    name = command.purge().name();
    version = command.purge().version();
    arg = command.purge().reason();
  } else if (command.has_prefetch()) {
    kind = "prefetch";
    name = command.prefetch().name();
    version = command.prefetch().version();
    arg = command.prefetch().source();
  } else {
    return absl::InvalidArgumentError("command without a kind");
  }
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "INSERT INTO commands(volume_id, kind, name, version, arg, state, created_ms, updated_ms) "
      "VALUES(?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)"));
  statement->Bind(1, volume_id).Bind(2, kind).Bind(3, name).Bind(4, version).Bind(5, arg)
      .Bind(6, now_ms);
  RETURN_IF_ERROR(statement->Run());
  command.set_id(std::to_string(db_->LastInsertRowId()));
  return command;
}

absl::StatusOr<bool> CoordinatorStore::HasOpenPurge(std::string_view volume_id,
                                                    std::string_view name,
                                                    std::string_view version) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "SELECT 1 FROM commands WHERE volume_id=?1 AND kind='purge' AND name=?2 AND version=?3 "
      "AND state IN ('pending', 'sent') LIMIT 1"));
  statement->Bind(1, volume_id).Bind(2, name).Bind(3, version);
  return statement->Step();
}

namespace {
v1::Command CommandFromRow(Statement& statement) {
  // Columns: id, kind, name, version, arg.
  v1::Command command;
  command.set_id(std::to_string(statement.Int(0)));
  if (statement.Text(1) == "purge") {
    command.mutable_purge()->set_name(statement.Text(2));
    command.mutable_purge()->set_version(statement.Text(3));
    command.mutable_purge()->set_reason(statement.Text(4));
  } else {
    command.mutable_prefetch()->set_name(statement.Text(2));
    command.mutable_prefetch()->set_version(statement.Text(3));
    command.mutable_prefetch()->set_source(statement.Text(4));
  }
  return command;
}

absl::StatusOr<int64_t> ParseCommandId(std::string_view id) {
  int64_t value = 0;
  if (id.empty() || id.size() > 18) return absl::InvalidArgumentError("bad command id");
  for (char c : id) {
    if (c < '0' || c > '9') return absl::InvalidArgumentError("bad command id");
    value = value * 10 + (c - '0');
  }
  return value;
}
}  // namespace

absl::StatusOr<std::vector<v1::Command>> CoordinatorStore::ClaimPending(
    std::string_view volume_id, std::string_view node_name, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  std::vector<v1::Command> commands;
  Transaction transaction(*db_);
  RETURN_IF_ERROR(transaction.status());
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT id, kind, name, version, arg FROM commands WHERE volume_id=?1 AND "
        "state='pending' ORDER BY id"));
    statement->Bind(1, volume_id);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      commands.push_back(CommandFromRow(*statement));
    }
  }
  if (commands.empty()) return commands;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "UPDATE commands SET state='sent', node_name=?2, updated_ms=?3 WHERE volume_id=?1 AND "
        "state='pending'"));
    statement->Bind(1, volume_id).Bind(2, node_name).Bind(3, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  RETURN_IF_ERROR(transaction.Commit());
  return commands;
}

absl::Status CoordinatorStore::RecordResult(std::string_view node_name,
                                            const v1::CommandResult& result, int64_t now_ms) {
  absl::StatusOr<int64_t> id = ParseCommandId(result.command_id());
  if (!id.ok()) return absl::OkStatus();  // not one of ours
  std::lock_guard lock(mutex_);
  Transaction transaction(*db_);
  RETURN_IF_ERROR(transaction.status());
  std::string kind, volume_id, name, version, reason, state;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT kind, volume_id, name, version, arg, state FROM commands WHERE id=?1"));
    statement->Bind(1, *id);
    ASSIGN_OR_RETURN(bool found, statement->Step());
    if (!found) return absl::OkStatus();
    kind = statement->Text(0);
    volume_id = statement->Text(1);
    name = statement->Text(2);
    version = statement->Text(3);
    reason = statement->Text(4);
    state = statement->Text(5);
  }
  if (state == "done" || state == "failed") return absl::OkStatus();  // answered already
  const bool ok = result.code() == 0;
  {
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "UPDATE commands SET state=?2, node_name=?3, result_code=?4, result_message=?5, "
        "bytes_freed=?6, updated_ms=?7 WHERE id=?1"));
    statement->Bind(1, *id).Bind(2, ok ? "done" : "failed").Bind(3, node_name)
        .Bind(4, int64_t{result.code()}).Bind(5, result.message())
        .Bind(6, AsInt(result.bytes_freed())).Bind(7, now_ms);
    RETURN_IF_ERROR(statement->Run());
  }
  if (ok && kind == "purge") {
    {
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "DELETE FROM cache_reports WHERE volume_id=?1 AND name=?2 AND version=?3"));
      statement->Bind(1, volume_id).Bind(2, name).Bind(3, version);
      RETURN_IF_ERROR(statement->Run());
    }
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "INSERT INTO audit_log(at_ms, volume_id, name, version, reason, bytes_freed, "
        "node_name, command_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    statement->Bind(1, now_ms).Bind(2, volume_id).Bind(3, name).Bind(4, version).Bind(5, reason)
        .Bind(6, AsInt(result.bytes_freed())).Bind(7, node_name).Bind(8, result.command_id());
    RETURN_IF_ERROR(statement->Run());
  }
  return transaction.Commit();
}

absl::StatusOr<std::optional<StoredCommand>> CoordinatorStore::GetCommand(std::string_view id) {
  absl::StatusOr<int64_t> number = ParseCommandId(id);
  if (!number.ok()) return std::optional<StoredCommand>();
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "SELECT id, kind, name, version, arg, volume_id, state, node_name, result_code, "
      "result_message FROM commands WHERE id=?1"));
  statement->Bind(1, *number);
  ASSIGN_OR_RETURN(bool found, statement->Step());
  if (!found) return std::optional<StoredCommand>();
  StoredCommand stored;
  stored.command = CommandFromRow(*statement);
  stored.volume_id = statement->Text(5);
  stored.state = statement->Text(6);
  stored.node_name = statement->Text(7);
  stored.result_code = static_cast<int>(statement->Int(8));
  stored.result_message = statement->Text(9);
  return std::optional<StoredCommand>(std::move(stored));
}

absl::StatusOr<std::vector<AuditEntry>> CoordinatorStore::Audit(size_t limit,
                                                                std::string_view name,
                                                                std::string_view kind) {
  std::lock_guard lock(mutex_);
  std::vector<AuditEntry> entries;
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "SELECT at_ms, volume_id, name, version, reason, bytes_freed, node_name, command_id, "
      "kind, principal FROM audit_log WHERE (coalesce(?2, '')='' OR name=?2) AND "
      "(coalesce(?3, '')='' OR kind=?3) ORDER BY id DESC LIMIT ?1"));
  statement->Bind(1, static_cast<int64_t>(limit)).Bind(2, name).Bind(3, kind);
  for (;;) {
    ASSIGN_OR_RETURN(bool row, statement->Step());
    if (!row) break;
    entries.push_back(AuditEntry{statement->Int(0), statement->Text(1), statement->Text(2),
                                 statement->Text(3), statement->Text(4),
                                 static_cast<uint64_t>(statement->Int(5)), statement->Text(6),
                                 statement->Text(7), statement->Text(8), statement->Text(9)});
  }
  return entries;
}

absl::Status CoordinatorStore::Ping() {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(auto statement, db_->Prepare("SELECT 1"));
  ASSIGN_OR_RETURN(bool row, statement->Step());
  if (!row || statement->Int(0) != 1) return absl::InternalError("sqlite: SELECT 1 gave no row");
  return absl::OkStatus();
}

absl::StatusOr<CoordinatorStore::Gauges> CoordinatorStore::ReadGauges() {
  std::lock_guard lock(mutex_);
  Gauges gauges;
  {
    // char(31) cannot appear in a model name or version.
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(
        "SELECT v.volume_id, COUNT(DISTINCT c.name || char(31) || c.version) FROM volumes v "
        "LEFT JOIN cache_reports c ON c.volume_id = v.volume_id AND c.state = 2 "
        "GROUP BY v.volume_id"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, statement->Step());
      if (!row) break;
      gauges.models_per_volume[statement->Text(0)] = static_cast<uint64_t>(statement->Int(1));
    }
    gauges.volumes = gauges.models_per_volume.size();
  }
  ASSIGN_OR_RETURN(auto statement, db_->Prepare(
      "SELECT SUM(state IN ('pending', 'sent')), SUM(state = 'failed') FROM commands "
      "WHERE kind = 'purge'"));
  ASSIGN_OR_RETURN(bool row, statement->Step());
  if (row) {
    gauges.purges_outstanding = static_cast<uint64_t>(statement->Int(0));
    gauges.purges_failed = static_cast<uint64_t>(statement->Int(1));
  }
  return gauges;
}

}  // namespace modelcache
