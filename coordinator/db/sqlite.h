#pragma once
// A small RAII layer over SQLite: one connection, prepared statements cached by their SQL,
// errors as absl::Status naming the statement. Not thread-safe: the owner serialises calls.
#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace modelcache {

class Statement {
 public:
  // `errors` (may be null) counts the statement's failed steps.
  Statement(sqlite3* db, sqlite3_stmt* statement, std::atomic<uint64_t>* errors = nullptr)
      : db_(db), statement_(statement), errors_(errors) {}
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Bind by 1-based index; chainable. Values are copied (SQLITE_TRANSIENT).
  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, int64_t value);
  Statement& BindNull(int index);

  // Steps once: true when a row is available, false when done. Errors name the SQL.
  absl::StatusOr<bool> Step();
  // Steps to completion (INSERT/UPDATE/DELETE).
  absl::Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Database;
  friend class StatementLease;
  absl::Status Error(std::string_view what) const;
  void Reset();

  sqlite3* db_;
  sqlite3_stmt* statement_;
  std::atomic<uint64_t>* errors_;
};

// A prepared statement on loan from the cache: reset and unbound when it goes out of scope.
class StatementLease {
 public:
  explicit StatementLease(Statement* statement) : statement_(statement) {}
  ~StatementLease() { if (statement_ != nullptr) statement_->Reset(); }
  StatementLease(StatementLease&& other) noexcept : statement_(other.statement_) {
    other.statement_ = nullptr;
  }
  StatementLease(const StatementLease&) = delete;
  Statement* operator->() { return statement_; }
  Statement& operator*() { return *statement_; }

 private:
  Statement* statement_;
};

class Database {
 public:
  // Opens (creating) the file, WAL mode, synchronous=NORMAL, foreign keys on, busy timeout.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without results (schema, pragmas, BEGIN/COMMIT).
  absl::Status Execute(std::string_view sql);
  // The cached prepared statement for `sql` (prepared on first use).
  absl::StatusOr<StatementLease> Prepare(const std::string& sql);
  int64_t LastInsertRowId() const;
  int Changes() const;

  // PRAGMA user_version: the schema migration number.
  absl::StatusOr<int> UserVersion();

  // Statements that failed (exec, prepare or step) since Open. Any thread.
  uint64_t Errors() const { return errors_.load(); }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::atomic<uint64_t> errors_{0};
  std::map<std::string, std::unique_ptr<Statement>> statements_;
};

// BEGIN IMMEDIATE in the constructor; ROLLBACK in the destructor unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  // The status of BEGIN; check it before using the transaction.
  const absl::Status& status() const { return begin_status_; }
  absl::Status Commit();

 private:
  Database& db_;
  absl::Status begin_status_;
  bool done_ = false;
};

// Runs `body` (returning absl::Status) in one transaction: BEGIN IMMEDIATE, then COMMIT when
// the body succeeds; a failed BEGIN, body or COMMIT rolls back and is returned.
template <typename Body>
absl::Status WithTransaction(Database& db, Body&& body) {
  Transaction transaction(db);
  if (!transaction.status().ok()) return transaction.status();
  if (absl::Status status = body(); !status.ok()) return status;
  return transaction.Commit();
}

}  // namespace modelcache
