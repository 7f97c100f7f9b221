// CoordinatorStore, registry: models, versions, caching, pins, deletion and sources.
#include "coordinator/db/store.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/status_macros.h"
#include "coordinator/db/registry_sources.h"
#include "coordinator/db/store_internal.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

using namespace store_internal;  // the helpers CoordinatorStore's files share

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

absl::StatusOr<v1::ModelInfo> CoordinatorStore::SetCaching(std::string_view name,
                                                           std::string_view version, bool enabled,
                                                           Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  RETURN_IF_ERROR(WithTransaction(*db_, [&]() -> absl::Status {
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
    return absl::OkStatus();
  }));
  return GetModelLocked(name, now_ms);
}

absl::StatusOr<v1::ModelInfo> CoordinatorStore::SetPin(std::string_view name,
                                                       std::string_view version, bool pinned,
                                                       Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  RETURN_IF_ERROR(WithTransaction(*db_, [&]() -> absl::Status {
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
    return absl::OkStatus();
  }));
  return GetModelLocked(name, now_ms);
}

absl::Status CoordinatorStore::MarkDeleted(std::string_view name, Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
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

absl::StatusOr<v1::ModelInfo> CoordinatorStore::GetModel(std::string_view name, Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
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
                     db_->Prepare(CopiesSql() + "WHERE name=?1" + kCopiesGroup));
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

absl::StatusOr<std::vector<v1::ModelInfo>> CoordinatorStore::ListModels(Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
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
                                                          Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  RETURN_IF_ERROR(WithTransaction(*db_, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(SourceEntry entry, ReadSourceEntry(*db_, name, version));
    ASSIGN_OR_RETURN(bool write, DecideSourceChange(name, version, source, entry, change));
    if (write) {
      RETURN_IF_ERROR(EnsureVersion(name, version, now_ms));
      RETURN_IF_ERROR(WriteVersionSource(*db_, name, version, source));
      RETURN_IF_ERROR(AppendRegistryAudit(
          *db_, now_ms, name, version, "source",
          fmt::format("source {} (was {})", source, entry.source.value_or("not registered")),
          principal));
    }
    return absl::OkStatus();
  }));
  return GetModelLocked(name, now_ms);
}

absl::StatusOr<v1::ModelInfo> CoordinatorStore::SetSourcePrefix(std::string_view name,
                                                                std::string_view prefix,
                                                                std::string_view principal,
                                                                Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  RETURN_IF_ERROR(WithTransaction(*db_, [&]() -> absl::Status {
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
    return absl::OkStatus();
  }));
  return GetModelLocked(name, now_ms);
}

absl::StatusOr<SourceEntry> CoordinatorStore::GetSourceEntry(std::string_view name,
                                                             std::string_view version) {
  std::lock_guard lock(mutex_);
  return ReadSourceEntry(*db_, name, version);
}

}  // namespace modelcache
