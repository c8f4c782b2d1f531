// Thin RAII wrappers over the sqlite3 C API (a connection, a prepared statement, a pool of
// read-only connections) and the one place SQLite result codes become storeplane Errors.
// Private to src/db. A Connection and its Statements are used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace storeplane::db {

// Transaction control, shared by the writer, the migrations and the read snapshots.
inline constexpr const char* kSqlBegin = "BEGIN";
inline constexpr const char* kSqlBeginImmediate = "BEGIN IMMEDIATE";
inline constexpr const char* kSqlCommit = "COMMIT";
inline constexpr const char* kSqlRollback = "ROLLBACK";

// Maps a SQLite result code to an Error with a safe message. `what` names the operation
// ("insert store"); internals (SQL text, file paths, sqlite3_errmsg) are not included.
// BUSY/LOCKED/IOERR/FULL/CANTOPEN/READONLY/CORRUPT/NOTADB/NOMEM -> kUnavailable,
// unique/primary-key constraints -> kAlreadyExists, other constraints -> kConflict,
// anything else -> kInternal.
Error SqliteError(int rc, std::string_view what);
bool IsUniqueViolation(int rc);

class Connection;

// One prepared statement. Binding errors are remembered and reported by the next Step().
// Statements from Connection::Prepare return to that connection's cache on destruction
// (reset, bindings cleared), so they must not outlive it.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt, Connection* owner = nullptr) : stmt_(stmt), owner_(owner) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, std::int64_t value);
  Statement& Bind(int index, const std::optional<std::string>& text);  // nullopt -> NULL
  Statement& Bind(int index, const std::optional<std::int64_t>& value);
  Statement& BindNull(int index);

  // One step: true when a row is available, false when the statement is done.
  // Errors carry the raw SQLite code in last_rc() for callers that map constraints.
  Result<bool> Step(std::string_view what);
  // Steps to completion, expecting no rows.
  Status Run(std::string_view what);
  int last_rc() const { return last_rc_; }
  // Makes the statement ready to run again; bindings are kept until rebound.
  void Reset();

  bool IsNull(int column) const;
  std::int64_t ColumnInt64(int column) const;
  std::string ColumnText(int column) const;
  std::optional<std::string> ColumnOptionalText(int column) const;
  std::optional<std::int64_t> ColumnOptionalInt64(int column) const;

 private:
  void NoteBind(int rc);
  void Release();  // back to the owner's cache, or finalized

  sqlite3_stmt* stmt_ = nullptr;
  Connection* owner_ = nullptr;  // cache to return to, or null to finalize
  int bind_rc_ = SQLITE_OK;
  int last_rc_ = SQLITE_OK;
};

// One database connection (sqlite3*), closed on destruction.
class Connection {
 public:
  // flags: SQLITE_OPEN_* (NOMUTEX and EXRESCODE are added). Sets the busy timeout.
  static Result<Connection> Open(const std::string& path, int flags, int busy_timeout_ms);

  Connection() = default;
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs one or more statements that return no rows of interest (pragmas, DDL, BEGIN).
  Status Exec(const char* sql, std::string_view what);
  // A statement for `sql`, from this connection's cache when one is free.
  Result<Statement> Prepare(const char* sql, std::string_view what);
  // Runs a single-row, single-column text query (e.g. "PRAGMA journal_mode=WAL").
  Result<std::string> QueryText(const char* sql, std::string_view what);
  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  std::int64_t changes() const;
  // True when no transaction is open (SQLite may roll one back by itself after
  // IOERR, FULL, BUSY or NOMEM).
  bool autocommit() const;
  sqlite3* get() const { return db_; }

 private:
  friend class Statement;
  explicit Connection(sqlite3* db) : db_(db) {}
  void Recycle(sqlite3_stmt* stmt);
  void FinalizeCached();

  sqlite3* db_ = nullptr;
  // Idle prepared statements by SQL text (bounded: the SQL texts are a fixed set).
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> cache_;
};

// A small blocking pool of read-only connections. Acquire() waits until one is free;
// the Lease hands it back on destruction. Thread-safe.
class ReadPool {
 public:
  explicit ReadPool(std::vector<Connection> connections);

  class Lease {
   public:
    Lease(ReadPool* pool, Connection* conn) : pool_(pool), conn_(conn) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), conn_(other.conn_) { other.conn_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_; }

   private:
    ReadPool* pool_;
    Connection* conn_;
  };

  Lease Acquire();

 private:
  void Release(Connection* conn);

  std::vector<std::unique_ptr<Connection>> all_;
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<Connection*> free_;  // guarded by mu_
};

}  // namespace storeplane::db
