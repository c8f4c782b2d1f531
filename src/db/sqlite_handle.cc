#include "db/sqlite_handle.h"

#include <cstring>
#include <utility>

namespace storeplane::db {

namespace {

std::string With(std::string_view what, std::string_view reason) {
  std::string message(what);
  message += ": ";
  message += reason;
  return message;
}

}  // namespace

bool IsUniqueViolation(int rc) { return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE; }

Error SqliteError(int rc, std::string_view what) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Error{ErrorCode::kUnavailable, With(what, "the database is busy; retry later"), {}};
    case SQLITE_IOERR: return Error{ErrorCode::kUnavailable, With(what, "database I/O error; retry later"), {}};
    case SQLITE_FULL: return Error{ErrorCode::kUnavailable, With(what, "the database disk is full"), {}};
    case SQLITE_CANTOPEN: return Error{ErrorCode::kUnavailable, With(what, "the database file cannot be opened"), {}};
    case SQLITE_READONLY: return Error{ErrorCode::kUnavailable, With(what, "the database is read-only"), {}};
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error{ErrorCode::kUnavailable, With(what, "the database file is damaged or not a database"), {}};
    case SQLITE_NOMEM: return Error{ErrorCode::kUnavailable, With(what, "out of memory"), {}};
    case SQLITE_PROTOCOL:
      return Error{ErrorCode::kUnavailable, With(what, "database locking protocol error; retry later"), {}};
    case SQLITE_CONSTRAINT:
      if (IsUniqueViolation(rc)) {
        return Error{ErrorCode::kAlreadyExists, With(what, "already exists"), {}};
      }
      return Error{ErrorCode::kConflict, With(what, "violates a database constraint"), {}};
    default: return Error{ErrorCode::kInternal, With(what, "unexpected database error"), {}};
  }
}

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      owner_(other.owner_),
      bind_rc_(other.bind_rc_),
      last_rc_(other.last_rc_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    stmt_ = std::exchange(other.stmt_, nullptr);
    owner_ = other.owner_;
    bind_rc_ = other.bind_rc_;
    last_rc_ = other.last_rc_;
  }
  return *this;
}

Statement::~Statement() { Release(); }

void Statement::Release() {
  if (stmt_ == nullptr) return;
  if (owner_ != nullptr) {
    owner_->Recycle(stmt_);
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
}

void Statement::NoteBind(int rc) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

Statement& Statement::Bind(int index, std::string_view text) {
  NoteBind(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Statement& Statement::Bind(int index, std::int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

Statement& Statement::Bind(int index, const std::optional<std::string>& text) {
  return text ? Bind(index, std::string_view(*text)) : BindNull(index);
}

Statement& Statement::Bind(int index, const std::optional<std::int64_t>& value) {
  return value ? Bind(index, *value) : BindNull(index);
}

Statement& Statement::BindNull(int index) {
  NoteBind(sqlite3_bind_null(stmt_, index));
  return *this;
}

Result<bool> Statement::Step(std::string_view what) {
  if (bind_rc_ != SQLITE_OK) {
    last_rc_ = bind_rc_;
    return SqliteError(bind_rc_, what);
  }
  last_rc_ = sqlite3_step(stmt_);
  if (last_rc_ == SQLITE_ROW) return true;
  if (last_rc_ == SQLITE_DONE) return false;
  return SqliteError(last_rc_, what);
}

Status Statement::Run(std::string_view what) {
  for (;;) {
    auto row = Step(what);
    if (!row.ok()) return row.error();
    if (!*row) return Status::Ok();
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);  // returns the last step's error, which Step() already reported
  last_rc_ = SQLITE_OK;
}

bool Statement::IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::int64_t Statement::ColumnInt64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::ColumnText(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return {};
  return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::string> Statement::ColumnOptionalText(int column) const {
  if (IsNull(column)) return std::nullopt;
  return ColumnText(column);
}

std::optional<std::int64_t> Statement::ColumnOptionalInt64(int column) const {
  if (IsNull(column)) return std::nullopt;
  return ColumnInt64(column);
}

// ---- Connection ----

Result<Connection> Connection::Open(const std::string& path, int flags, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  Connection conn(raw);  // owns raw even on failure (sqlite3_open_v2 may allocate it)
  if (rc != SQLITE_OK) {
    Error error = SqliteError(rc, "open database");
    error.code = ErrorCode::kUnavailable;
    return error;
  }
  sqlite3_extended_result_codes(raw, 1);
  rc = sqlite3_busy_timeout(raw, busy_timeout_ms);
  if (rc != SQLITE_OK) return SqliteError(rc, "set busy timeout");
  return conn;
}

Connection::Connection(Connection&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), cache_(std::move(other.cache_)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    FinalizeCached();
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    cache_ = std::move(other.cache_);
  }
  return *this;
}

Connection::~Connection() {
  FinalizeCached();
  sqlite3_close_v2(db_);
}

void Connection::FinalizeCached() {
  for (auto& [sql, idle] : cache_) {
    for (sqlite3_stmt* stmt : idle) sqlite3_finalize(stmt);
  }
  cache_.clear();
}

void Connection::Recycle(sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  try {
    cache_[sqlite3_sql(stmt)].push_back(stmt);
  } catch (...) {
    sqlite3_finalize(stmt);  // out of memory: just do not cache it
  }
}

Status Connection::Exec(const char* sql, std::string_view what) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(sqlite3_extended_errcode(db_), what);
  return Status::Ok();
}

Result<Statement> Connection::Prepare(const char* sql, std::string_view what) {
  if (auto it = cache_.find(sql); it != cache_.end() && !it->second.empty()) {
    sqlite3_stmt* stmt = it->second.back();
    it->second.pop_back();
    return Statement(stmt, this);
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(rc, what);
  }
  if (stmt == nullptr) return Error::Internal(std::string(what) + ": empty statement");
  // The cache is keyed by sqlite3_sql(); cache only when that is the text asked for
  // (it is not for multi-statement text), so that lookups and returns agree.
  const bool single = std::strcmp(sqlite3_sql(stmt), sql) == 0;
  return Statement(stmt, single ? this : nullptr);
}

Result<std::string> Connection::QueryText(const char* sql, std::string_view what) {
  auto stmt = Prepare(sql, what);
  if (!stmt.ok()) return stmt.error();
  auto row = stmt->Step(what);
  if (!row.ok()) return row.error();
  if (!*row) return Error::Internal(std::string(what) + ": no result");
  return stmt->ColumnText(0);
}

std::int64_t Connection::changes() const { return sqlite3_changes64(db_); }

bool Connection::autocommit() const { return sqlite3_get_autocommit(db_) != 0; }

// ---- ReadPool ----

ReadPool::ReadPool(std::vector<Connection> connections) {
  for (auto& conn : connections) {
    all_.push_back(std::make_unique<Connection>(std::move(conn)));
    free_.push_back(all_.back().get());
  }
}

ReadPool::Lease ReadPool::Acquire() {
  std::unique_lock lock(mu_);
  available_.wait(lock, [this] { return !free_.empty(); });
  Connection* conn = free_.back();
  free_.pop_back();
  return Lease(this, conn);
}

void ReadPool::Release(Connection* conn) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(conn);
  }
  available_.notify_one();
}

ReadPool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(conn_);
}

}  // namespace storeplane::db
