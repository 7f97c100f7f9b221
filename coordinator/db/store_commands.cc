// CoordinatorStore, commands: the queue of commands for the agents, their answers, the audit log.
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

absl::StatusOr<v1::Command> CoordinatorStore::EnqueueCommand(std::string_view volume_id,
                                                             v1::Command command,
                                                             Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
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

absl::StatusOr<std::vector<v1::Command>> CoordinatorStore::ClaimPending(
    std::string_view volume_id, std::string_view node_name, Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  std::lock_guard lock(mutex_);
  std::vector<v1::Command> commands;
  RETURN_IF_ERROR(WithTransaction(*db_, [&]() -> absl::Status {
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
    if (commands.empty()) return absl::OkStatus();
    {
      ASSIGN_OR_RETURN(auto statement, db_->Prepare(
          "UPDATE commands SET state='sent', node_name=?2, updated_ms=?3 WHERE volume_id=?1 AND "
          "state='pending'"));
      statement->Bind(1, volume_id).Bind(2, node_name).Bind(3, now_ms);
      RETURN_IF_ERROR(statement->Run());
    }
    return absl::OkStatus();
  }));
  return commands;
}

absl::Status CoordinatorStore::RecordResult(std::string_view node_name,
                                            const v1::CommandResult& result, Clock::TimePoint now) {
  const int64_t now_ms = ToUnixMillis(now);
  absl::StatusOr<int64_t> id = ParseCommandId(result.command_id());
  if (!id.ok()) return absl::OkStatus();  // not one of ours
  std::lock_guard lock(mutex_);
  return WithTransaction(*db_, [&]() -> absl::Status {
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
    return absl::OkStatus();
  });
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

}  // namespace modelcache
