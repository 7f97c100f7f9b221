#include "coordinator/db/store.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/pod_lease_ttl.h"
#include "common/status_macros.h"
#include "coordinator/db/store_internal.h"
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
    // 5: who holds an agent's leases on a copy (newline-separated), so that a purge can say
    // which pod keeps a model.
    R"sql(
ALTER TABLE cache_reports ADD COLUMN lease_holders TEXT NOT NULL DEFAULT '';
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

}  // namespace

namespace store_internal {

int64_t AsInt(uint64_t value) { return static_cast<int64_t>(value); }

std::string StateName(int64_t state) {
  switch (state) {
    case v1::ModelUsage::FILLING: return "FILLING";
    case v1::ModelUsage::READY: return "READY";
    case v1::ModelUsage::PURGING: return "PURGING";
    default: return "UNKNOWN";
  }
}

// How long after an agent's last heartbeat the leases it reported still count: longer than
// the agents' default lease TTL (common/pod_lease_ttl.h), so that its pods' leases would have
// expired by then even without a renewal reaching the coordinator.
constexpr std::chrono::milliseconds kReportedLeasesOutliveSilence =
    kDefaultPodLeaseTtl + std::chrono::minutes(5);

// The aggregate of every agent's report of one copy. Leases reported by an agent that went
// away and has not been heard from for kReportedLeasesOutliveSilence no longer count:
// otherwise a dead node would protect its models forever. "Now" is the newest heartbeat of any
// agent, so the rule runs on the agents' clock and a coordinator restart alone (every agent
// disconnected, none heard from since) drops no lease.
const std::string& CopiesSql() {
  static const std::string sql = fmt::format(
      "SELECT volume_id, name, version, MAX(size_bytes), MIN(state), MAX(last_access_ms), "
      "SUM(CASE WHEN node_name IN (SELECT node_name FROM agents WHERE connected=0 AND "
      "last_heartbeat_ms < (SELECT MAX(last_heartbeat_ms) FROM agents) - {0}) "
      "THEN 0 ELSE live_leases END), "
      "group_concat(node_name, ','), "
      // Draining: no agent serves the volume (it is only some agent's extra volume), so no
      // agent would run a purge command for it.
      "volume_id NOT IN (SELECT volume_id FROM agents), "
      // The holders of the leases that count, newline-separated.
      "group_concat(CASE WHEN node_name IN (SELECT node_name FROM agents WHERE connected=0 AND "
      "last_heartbeat_ms < (SELECT MAX(last_heartbeat_ms) FROM agents) - {0}) "
      "THEN NULL ELSE NULLIF(lease_holders, '') END, char(10)) FROM cache_reports ",
      kReportedLeasesOutliveSilence.count());
  return sql;
}
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

}  // namespace store_internal

absl::Status MigrateSchema(Database& db, int target) {
  ASSIGN_OR_RETURN(int current, db.UserVersion());
  if (current > kSchemaVersion) {
    return absl::FailedPreconditionError(fmt::format(
        "database schema {} is newer than this coordinator's {}", current, kSchemaVersion));
  }
  for (int next = current + 1; next <= std::min(target, kSchemaVersion); ++next) {
    RETURN_IF_ERROR(WithTransaction(db, [&]() -> absl::Status {
      RETURN_IF_ERROR(db.Execute(kMigrations[next - 1]));
      RETURN_IF_ERROR(db.Execute(fmt::format("PRAGMA user_version={}", next)));
      return absl::OkStatus();
    }));
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
  return WithTransaction(*db_, [&]() -> absl::Status {
    RETURN_IF_ERROR(db_->Execute("UPDATE agents SET connected=0"));
    RETURN_IF_ERROR(db_->Execute("UPDATE commands SET state='pending', node_name='' WHERE state='sent'"));
    return absl::OkStatus();
  });
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
