// CoordinatorStore, views: usage, nodes and the snapshot the purge policy plans over.
#include "coordinator/db/store.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/split.h"
#include "common/status_macros.h"
#include "coordinator/db/store_internal.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

using namespace store_internal;  // the helpers CoordinatorStore's files share

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
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(CopiesSql() + kCopiesGroup));
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
    ASSIGN_OR_RETURN(auto statement, db_->Prepare(CopiesSql() + kCopiesGroup));
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
      const std::string holders = statement->Text(9);  // the views below point into it
      for (std::string_view holder : SplitOn(holders, '\n')) {
        if (!holder.empty()) copy.lease_holders.insert(std::string(holder));
      }
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
      snapshot.in_use_leases.push_back(InUseLease{statement->Text(0), statement->Text(1),
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

}  // namespace modelcache
