// CoordinatorStore, agents: hellos, disconnects and usage reports.
#include "coordinator/db/store.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/status_macros.h"
#include "coordinator/db/store_internal.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

using namespace store_internal;  // the helpers CoordinatorStore's files share

absl::Status CoordinatorStore::RecordHello(const v1::AgentHello& hello, Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  return WithTransaction(*db_, [&]() -> absl::Status {
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
    return absl::OkStatus();
  });
}

absl::Status CoordinatorStore::RecordDisconnect(std::string_view node_name, Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  return WithTransaction(*db_, [&]() -> absl::Status {
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
    return absl::OkStatus();
  });
}

absl::Status CoordinatorStore::ApplyUsage(std::string_view node_name, std::string_view volume_id,
                                          const v1::UsageReport& report, Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  std::vector<std::string> ensured;
  RETURN_IF_ERROR(WithTransaction(*db_, [&]() -> absl::Status {
    RETURN_IF_ERROR(ApplyUsageLocked(node_name, volume_id, report, now_ms, ensured));
    return absl::OkStatus();
  }));
  known_versions_.insert(ensured.begin(), ensured.end());
  return absl::OkStatus();
}

absl::Status CoordinatorStore::ApplyUsageBatch(std::span<const UsageUpdate> updates,
                                               Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  std::vector<std::string> ensured;
  RETURN_IF_ERROR(WithTransaction(*db_, [&]() -> absl::Status {
    for (const UsageUpdate& update : updates) {
      RETURN_IF_ERROR(
          ApplyUsageLocked(update.node_name, update.volume_id, *update.report, now_ms, ensured));
    }
    return absl::OkStatus();
  }));
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
        "last_access_ms, live_leases, updated_ms, lease_holders) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
        "ON CONFLICT(volume_id, node_name, name, version) DO UPDATE SET size_bytes=?5, "
        "state=?6, last_access_ms=?7, live_leases=?8, updated_ms=?9, lease_holders=?10"));
    std::string holders;
    for (const std::string& holder : model.lease_holders()) {
      // A newline separates holders in the column; none can hold one (names, paths).
      if (holder.find('\n') != std::string::npos) continue;
      if (!holders.empty()) holders += '\n';
      holders += holder;
    }
    statement->Bind(1, volume_id).Bind(2, node_name).Bind(3, model.name())
        .Bind(4, model.version()).Bind(5, AsInt(model.size_bytes()))
        .Bind(6, int64_t{model.state()}).Bind(7, model.last_access_unix_ms())
        .Bind(8, int64_t{model.live_leases()}).Bind(9, now_ms).Bind(10, holders);
    RETURN_IF_ERROR(statement->Run());
  }
  return absl::OkStatus();
}

}  // namespace modelcache
