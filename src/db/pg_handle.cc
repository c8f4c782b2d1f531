#include "db/pg_handle.h"

#include <charconv>
#include <utility>

namespace storeplane::db::pg {

namespace {

std::string With(std::string_view what, std::string_view detail) {
  std::string message(what);
  message += ": ";
  message += detail;
  return message;
}

bool StartsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

}  // namespace

Error PgError(std::string_view sqlstate, std::string_view what) {
  if (sqlstate.empty() || StartsWith(sqlstate, "08")) {
    return Error{ErrorCode::kUnavailable, With(what, "the database connection failed; retry later"), {}};
  }
  if (sqlstate == kSerializationFailure || sqlstate == kDeadlockDetected || StartsWith(sqlstate, "40")) {
    return Error{ErrorCode::kUnavailable, With(what, "the database is busy; retry later"), {}};
  }
  if (StartsWith(sqlstate, "53")) {
    return Error{ErrorCode::kUnavailable, With(what, "the database is out of resources; retry later"), {}};
  }
  if (StartsWith(sqlstate, "57")) {
    return Error{ErrorCode::kUnavailable, With(what, "the database is shutting down or was interrupted"), {}};
  }
  if (sqlstate == "25006") {  // read_only_sql_transaction: connected to a standby
    return Error{ErrorCode::kUnavailable, With(what, "the database is read-only (a standby?)"), {}};
  }
  if (sqlstate == kUniqueViolation) return Error{ErrorCode::kAlreadyExists, With(what, "already exists"), {}};
  if (StartsWith(sqlstate, "23")) {
    return Error{ErrorCode::kConflict, With(what, "violates a database constraint"), {}};
  }
  return Error{ErrorCode::kInternal, With(what, "unexpected database error"), {}};
}

// ---- Params ----

Params& Params::Add(std::string_view text) {
  values_.emplace_back(std::string(text));
  return *this;
}
Params& Params::Add(std::int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}
Params& Params::Add(bool value) {
  values_.emplace_back(value ? "t" : "f");
  return *this;
}
Params& Params::Add(const std::optional<std::string>& text) {
  values_.push_back(text);
  return *this;
}
Params& Params::Add(const std::optional<std::int64_t>& value) {
  if (value) return Add(*value);
  return AddNull();
}
Params& Params::AddNull() {
  values_.emplace_back(std::nullopt);
  return *this;
}
std::vector<const char*> Params::pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

// ---- Rows ----

Rows::Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (result_) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}
Rows::~Rows() {
  if (result_) PQclear(result_);
}
int Rows::size() const { return result_ ? PQntuples(result_) : 0; }
std::int64_t Rows::affected() const {
  if (!result_) return 0;
  const char* tuples = PQcmdTuples(result_);
  std::int64_t n = 0;
  if (tuples && *tuples) std::from_chars(tuples, tuples + std::char_traits<char>::length(tuples), n);
  return n;
}
bool Rows::IsNull(int row, int column) const { return !result_ || PQgetisnull(result_, row, column) == 1; }
std::string Rows::Text(int row, int column) const {
  if (IsNull(row, column)) return {};
  return std::string(PQgetvalue(result_, row, column), static_cast<std::size_t>(PQgetlength(result_, row, column)));
}
std::int64_t Rows::Int64(int row, int column) const {
  if (IsNull(row, column)) return 0;
  const char* v = PQgetvalue(result_, row, column);
  std::int64_t n = 0;
  std::from_chars(v, v + PQgetlength(result_, row, column), n);
  return n;
}
bool Rows::Bool(int row, int column) const {
  return !IsNull(row, column) && PQgetvalue(result_, row, column)[0] == 't';
}
std::optional<std::string> Rows::OptionalText(int row, int column) const {
  if (IsNull(row, column)) return std::nullopt;
  return Text(row, column);
}
std::optional<std::int64_t> Rows::OptionalInt64(int row, int column) const {
  if (IsNull(row, column)) return std::nullopt;
  return Int64(row, column);
}

// ---- PgConnection ----

Result<PgConnection> PgConnection::Open(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return Error{ErrorCode::kUnavailable, "cannot connect to PostgreSQL: out of memory", {}};
  if (PQstatus(conn) != CONNECTION_OK) {
    PQfinish(conn);
    return Error{ErrorCode::kUnavailable,
                 "cannot connect to PostgreSQL (check the connection string, the server and its credentials)",
                 {}};
  }
  // Server notices ("relation already exists, skipping") are not errors: not printed.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  PgConnection out(conn);
  // Predictable text forms, whatever the server's defaults.
  if (auto s = out.Script("SET client_encoding = 'UTF8'; SET standard_conforming_strings = on; SET TIME ZONE 'UTC'",
                          "configure the session");
      !s.ok()) {
    return s.error();
  }
  return out;
}

PgConnection::PgConnection(PgConnection&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)),
      prepared_(std::move(other.prepared_)),
      failure_(std::move(other.failure_)) {}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_) PQfinish(conn_);
    conn_ = std::exchange(other.conn_, nullptr);
    prepared_ = std::move(other.prepared_);
    failure_ = std::move(other.failure_);
  }
  return *this;
}

PgConnection::~PgConnection() {
  if (conn_) PQfinish(conn_);
}

bool PgConnection::healthy() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

bool PgConnection::in_transaction() const {
  if (!conn_) return false;
  const auto status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

Result<Rows> PgConnection::Check(PGresult* result, std::string_view what) {
  Rows rows(result);
  const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    failure_ = {};
    return rows;
  }
  failure_ = {};
  if (result) {
    if (const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) failure_.sqlstate = state;
    if (const char* constraint = PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME)) failure_.constraint = constraint;
  }
  if (!healthy()) failure_.sqlstate.clear();
  return PgError(failure_.sqlstate, what);
}

Result<Rows> PgConnection::Exec(const char* sql, const Params& params, std::string_view what) {
  if (!conn_) return PgError("", what);
  const std::string key(sql);
  auto it = prepared_.find(key);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size() + 1);
    auto prepared = Check(PQprepare(conn_, name.c_str(), sql, 0, nullptr), what);
    if (!prepared.ok()) return prepared.error();
    it = prepared_.emplace(key, std::move(name)).first;
  }
  const auto values = params.pointers();
  return Check(PQexecPrepared(conn_, it->second.c_str(), params.size(), values.data(), nullptr, nullptr, 0), what);
}

Status PgConnection::Script(const std::string& sql, std::string_view what) {
  if (!conn_) return PgError("", what);
  auto rows = Check(PQexec(conn_, sql.c_str()), what);
  if (!rows.ok()) return rows.error();
  return {};
}

// ---- PgPool ----

PgPool::PgPool(std::string conninfo, int size) : conninfo_(std::move(conninfo)), size_(size < 1 ? 1 : size) {}

PgPool::~PgPool() = default;

PgPool::Lease::~Lease() {
  if (conn_) pool_->Release(std::move(conn_));
}

Result<PgPool::Lease> PgPool::Acquire() {
  std::unique_lock lock(mu_);
  available_.wait(lock, [&] { return !free_.empty() || open_ < size_; });
  if (!free_.empty()) {
    auto conn = std::move(free_.back());
    free_.pop_back();
    return Lease(this, std::move(conn));
  }
  ++open_;
  lock.unlock();
  auto opened = PgConnection::Open(conninfo_);
  if (!opened.ok()) {
    std::lock_guard relock(mu_);
    --open_;
    available_.notify_one();
    return opened.error();
  }
  return Lease(this, std::make_unique<PgConnection>(std::move(*opened)));
}

void PgPool::Release(std::unique_ptr<PgConnection> conn) {
  // A connection left inside a transaction (a caller's bug or a lost COMMIT) is not reused.
  const bool reusable = conn->healthy() && !conn->in_transaction();
  {
    std::lock_guard lock(mu_);
    if (reusable) {
      free_.push_back(std::move(conn));
    } else {
      --open_;
    }
  }
  available_.notify_one();
}

// ---- InTransaction ----

namespace {

bool Retryable(const PgFailure& failure) {
  return failure.sqlstate == kSerializationFailure || failure.sqlstate == kDeadlockDetected;
}

}  // namespace

Status InTransaction(PgPool& pool, const std::function<Status(PgConnection&)>& body, std::string_view what,
                     int attempts) {
  Error last{ErrorCode::kUnavailable, With(what, "the database is busy; retry later"), {}};
  for (int attempt = 0; attempt < attempts; ++attempt) {
    auto lease = pool.Acquire();
    if (!lease.ok()) return lease.error();
    PgConnection& conn = **lease;
    if (auto s = conn.Script("BEGIN", what); !s.ok()) {
      last = s.error();
      if (!conn.healthy()) continue;  // a stale pooled connection: try another
      return last;
    }
    Status outcome = body(conn);
    if (!outcome.ok()) {
      const bool retry = Retryable(conn.last_failure()) || !conn.healthy();
      (void)conn.Script("ROLLBACK", what);
      if (retry) {
        last = outcome.error();
        continue;
      }
      return outcome;
    }
    if (auto s = conn.Script("COMMIT", what); !s.ok()) {
      if (Retryable(conn.last_failure())) {
        last = s.error();
        continue;
      }
      if (conn.in_transaction()) (void)conn.Script("ROLLBACK", what);
      return s.error();  // lost connection during COMMIT: outcome unknown
    }
    return {};
  }
  return last;
}

}  // namespace storeplane::db::pg
