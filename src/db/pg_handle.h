// Thin RAII wrappers over libpq (a connection with its prepared statements, a result, a
// pool of connections, a transaction runner) and the one place PostgreSQL SQLSTATEs become
// storeplane Errors. Private to src/db. A PgConnection is used by one thread at a time.
//
// Values travel as text (libpq's text format): integers are decimal, booleans 't'/'f',
// NULL is a null pointer. Statements are prepared once per connection, on first use, and
// named by the order of first use; the SQL text is the key.
#pragma once

#include <libpq-fe.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace storeplane::db::pg {

// SQLSTATEs the code decides on.
inline constexpr std::string_view kUniqueViolation = "23505";
inline constexpr std::string_view kSerializationFailure = "40001";
inline constexpr std::string_view kDeadlockDetected = "40P01";

// Maps a failed statement to an Error with a safe message. `what` names the operation
// ("insert store"); internals (SQL text, server messages, conninfo) are not included.
// Class 08 (connection), 53 (resources), 57 (operator intervention), 40 (rollback) and a
// lost connection -> kUnavailable; 23505 -> kAlreadyExists; other class 23 -> kConflict;
// anything else -> kInternal.
Error PgError(std::string_view sqlstate, std::string_view what);

// Positional parameters ($1, $2, ...) as text.
class Params {
 public:
  Params& Add(std::string_view text);
  Params& Add(const char* text) { return Add(std::string_view(text)); }
  Params& Add(const std::string& text) { return Add(std::string_view(text)); }
  Params& Add(std::int64_t value);
  Params& Add(int value) { return Add(static_cast<std::int64_t>(value)); }
  Params& Add(bool value);
  Params& Add(const std::optional<std::string>& text);  // nullopt -> NULL
  Params& Add(const std::optional<std::int64_t>& value);
  Params& AddNull();

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers for PQexecPrepared; valid while this object is unchanged.
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
};

// A statement's result rows (owns the PGresult). Columns are 0-based.
class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* result) : result_(result) {}
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  int size() const;
  bool empty() const { return size() == 0; }
  // Rows inserted, updated or deleted (the command tag's count).
  std::int64_t affected() const;

  bool IsNull(int row, int column) const;
  std::string Text(int row, int column) const;
  std::int64_t Int64(int row, int column) const;  // 0 for NULL or non-numbers
  bool Bool(int row, int column) const;           // 't' is true
  std::optional<std::string> OptionalText(int row, int column) const;
  std::optional<std::int64_t> OptionalInt64(int row, int column) const;

 private:
  PGresult* result_ = nullptr;
};

// Why the last statement on a connection failed, for callers that map constraints.
struct PgFailure {
  std::string sqlstate;    // "" when the connection itself failed
  std::string constraint;  // the violated constraint's name, when the server named one
};

class PgConnection {
 public:
  // Connects (blocking). kUnavailable with a safe message: never the conninfo or the
  // server's text, which may name hosts and users.
  static Result<PgConnection> Open(const std::string& conninfo);

  PgConnection() = default;
  PgConnection(PgConnection&& other) noexcept;
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // One statement with parameters, prepared on first use on this connection.
  Result<Rows> Exec(const char* sql, const Params& params, std::string_view what);
  Result<Rows> Exec(const char* sql, std::string_view what) { return Exec(sql, Params{}, what); }
  // One or more statements without parameters (DDL, BEGIN, COMMIT, SET), not prepared.
  Status Script(const std::string& sql, std::string_view what);

  // Why the last failed call failed (cleared by the next success).
  const PgFailure& last_failure() const { return failure_; }
  // False once the server went away (the pool drops such connections).
  bool healthy() const;
  // True inside a transaction block (also a failed one).
  bool in_transaction() const;
  PGconn* get() const { return conn_; }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  Result<Rows> Check(PGresult* result, std::string_view what);

  PGconn* conn_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
  PgFailure failure_;
};

// A blocking pool of connections to one database, opened lazily up to `size`. Acquire()
// waits for a free one (or opens one); a connection returned unhealthy is dropped.
class PgPool {
 public:
  PgPool(std::string conninfo, int size);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<PgConnection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    PgConnection& operator*() const { return *conn_; }
    PgConnection* operator->() const { return conn_.get(); }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> conn_;
  };

  // kUnavailable when no connection can be opened.
  Result<Lease> Acquire();

 private:
  void Release(std::unique_ptr<PgConnection> conn);

  const std::string conninfo_;
  const int size_;
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<PgConnection>> free_;  // guarded by mu_
  int open_ = 0;                                     // guarded by mu_: leased + free
};

// Runs `body` in one transaction (BEGIN ... COMMIT) on a pooled connection. A body error
// rolls back and is returned. Serialization failures and deadlocks (at any statement or
// at COMMIT) roll back and run the body again, up to `attempts` times, then kUnavailable.
// A connection lost before COMMIT is retried on another connection; one lost during
// COMMIT is kUnavailable (the outcome is unknown, as with any database).
Status InTransaction(PgPool& pool, const std::function<Status(PgConnection&)>& body, std::string_view what,
                     int attempts = 5);

}  // namespace storeplane::db::pg
