#include "coordinator/db/sqlite.h"

#include "common/status_annotate.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

Statement& Statement::Bind(int index, std::string_view value) {
  sqlite3_bind_text(statement_, index, value.data(), static_cast<int>(value.size()),
                    SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(statement_, index, value);
  return *this;
}

Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(statement_, index);
  return *this;
}

absl::Status Statement::Error(std::string_view what) const {
  if (errors_ != nullptr) ++*errors_;
  return absl::InternalError(fmt::format("sqlite {} \"{}\": {}", what, sqlite3_sql(statement_),
                                         sqlite3_errmsg(db_)));
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(statement_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error("step");
}

absl::Status Statement::Run() {
  for (;;) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(statement_, column); }

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(statement_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(statement_, column)));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

void Statement::Reset() {
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path) {
  sqlite3* handle = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &handle,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string message = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    sqlite3_close(handle);
    return absl::UnavailableError(fmt::format("open database {}: {}", path, message));
  }
  std::unique_ptr<Database> db(new Database(handle));
  sqlite3_busy_timeout(handle, 5000);
  absl::Status status = db->Execute(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  if (!status.ok()) {
    return Annotate(status, fmt::format("database {}", path));
  }
  return db;
}

Database::~Database() {
  statements_.clear();  // finalize before close
  sqlite3_close(db_);
}

absl::Status Database::Execute(std::string_view sql) {
  char* error = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error != nullptr ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    ++errors_;
    return absl::InternalError(fmt::format("sqlite exec \"{}\": {}", text, message));
  }
  return absl::OkStatus();
}

absl::StatusOr<StatementLease> Database::Prepare(const std::string& sql) {
  auto found = statements_.find(sql);
  if (found != statements_.end()) return StatementLease(found->second.get());
  sqlite3_stmt* handle = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &handle, nullptr);
  if (rc != SQLITE_OK) {
    ++errors_;
    return absl::InternalError(fmt::format("sqlite prepare \"{}\": {}", sql, sqlite3_errmsg(db_)));
  }
  auto statement = std::make_unique<Statement>(db_, handle, &errors_);
  Statement* raw = statement.get();
  statements_.emplace(sql, std::move(statement));
  return StatementLease(raw);
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
int Database::Changes() const { return sqlite3_changes(db_); }

absl::StatusOr<int> Database::UserVersion() {
  absl::StatusOr<StatementLease> statement = Prepare("PRAGMA user_version");
  if (!statement.ok()) return statement.status();
  absl::StatusOr<bool> row = (*statement)->Step();
  if (!row.ok()) return row.status();
  return static_cast<int>((*statement)->Int(0));
}

Transaction::Transaction(Database& db) : db_(db) {
  begin_status_ = db_.Execute("BEGIN IMMEDIATE");
  done_ = !begin_status_.ok();
}

Transaction::~Transaction() {
  if (!done_) (void)db_.Execute("ROLLBACK");
}

absl::Status Transaction::Commit() {
  absl::Status status = db_.Execute("COMMIT");
  if (status.ok()) done_ = true;
  return status;
}

}  // namespace modelcache
