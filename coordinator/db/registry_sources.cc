#include "coordinator/db/registry_sources.h"

#include "common/status_macros.h"

namespace modelcache {

absl::StatusOr<SourceEntry> ReadSourceEntry(Database& db, std::string_view name,
                                            std::string_view version) {
  SourceEntry entry;
  {
    ASSIGN_OR_RETURN(auto statement,
                     db.Prepare("SELECT source_prefix FROM models WHERE name=?1"));
    statement->Bind(1, name);
    ASSIGN_OR_RETURN(bool found, statement->Step());
    if (found) entry.prefix = statement->Text(0);
  }
  ASSIGN_OR_RETURN(auto statement,
                   db.Prepare("SELECT source FROM versions WHERE name=?1 AND version=?2"));
  statement->Bind(1, name).Bind(2, version);
  ASSIGN_OR_RETURN(bool found, statement->Step());
  if (found && !statement->IsNull(0)) entry.source = statement->Text(0);
  return entry;
}

absl::Status WriteVersionSource(Database& db, std::string_view name, std::string_view version,
                                std::string_view source) {
  ASSIGN_OR_RETURN(auto statement,
                   db.Prepare("UPDATE versions SET source=?3 WHERE name=?1 AND version=?2"));
  statement->Bind(1, name).Bind(2, version).Bind(3, source);
  return statement->Run();
}

absl::Status WriteSourcePrefix(Database& db, std::string_view name, std::string_view prefix,
                               int64_t now_ms) {
  ASSIGN_OR_RETURN(auto statement, db.Prepare(
      "UPDATE models SET source_prefix=?2, updated_ms=?3 WHERE name=?1"));
  statement->Bind(1, name).Bind(2, prefix).Bind(3, now_ms);
  return statement->Run();
}

absl::Status AppendRegistryAudit(Database& db, int64_t now_ms, std::string_view name,
                                 std::string_view version, std::string_view kind,
                                 std::string_view reason, std::string_view principal) {
  ASSIGN_OR_RETURN(auto statement, db.Prepare(
      "INSERT INTO audit_log(at_ms, volume_id, name, version, reason, bytes_freed, node_name, "
      "command_id, kind, principal) VALUES(?1, '', ?2, ?3, ?4, 0, '', '', ?5, ?6)"));
  statement->Bind(1, now_ms).Bind(2, name).Bind(3, version).Bind(4, reason).Bind(5, kind)
      .Bind(6, principal);
  return statement->Run();
}

absl::Status AddRegisteredSources(Database& db, v1::CachingPolicy& policy) {
  ASSIGN_OR_RETURN(auto statement, db.Prepare(
      "SELECT name, version, source FROM versions WHERE source IS NOT NULL "
      "ORDER BY name, version"));
  for (;;) {
    ASSIGN_OR_RETURN(bool row, statement->Step());
    if (!row) break;
    v1::RegisteredSource* source = policy.add_sources();
    source->set_name(statement->Text(0));
    source->set_version(statement->Text(1));
    source->set_source(statement->Text(2));
  }
  policy.set_sources_included(true);
  return absl::OkStatus();
}

}  // namespace modelcache
