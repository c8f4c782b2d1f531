#include "db/sqlite_to_postgres.h"

#include <sqlite3.h>

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "core/audit.h"
#include "db/audit_chain.h"  // DecodeAuditParams
#include "db/pg_handle.h"

namespace storeplane::db {

namespace {

// Every table that holds state, parents before children (foreign keys), with the same
// names and columns in both schemas. schema_migrations is each back end's own; events,
// leadership, audit_head and meta exist only on PostgreSQL.
constexpr const char* kTables[] = {
    "stores",
    "principals",
    "tokens",
    "idempotency_keys",
    "change_requests",
    "audit_log",
    "audit_checkpoints",
    "enrollment_tokens",
    "agents",
    "operations",
    "last_successes",
    "rollouts",
    "rollout_targets",
    "rollout_commands",
    "pipeline_runs",
    "outbox",
    "callback_deliveries",
};

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;
using SqliteStmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

Error Unavailable(const std::string& message) { return Error{ErrorCode::kUnavailable, message, {}}; }

// The PostgreSQL type of each column of `table` (information_schema data_type).
Result<std::map<std::string, std::string>> ColumnTypes(pg::PgConnection& conn, const std::string& table) {
  auto rows = conn.Exec(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND "
      "table_name = $1",
      pg::Params().Add(table), "read the PostgreSQL schema");
  if (!rows.ok()) return rows.error();
  std::map<std::string, std::string> out;
  for (int r = 0; r < rows->size(); ++r) out[rows->Text(r, 0)] = rows->Text(r, 1);
  return out;
}

// Copies one table; returns the rows copied.
Result<std::int64_t> CopyTable(sqlite3* source, pg::PgConnection& target, const std::string& table) {
  auto types = ColumnTypes(target, table);
  if (!types.ok()) return types.error();
  if (types->empty()) return Error::Internal("the PostgreSQL schema has no table " + table);

  sqlite3_stmt* raw = nullptr;
  const std::string select =
      "SELECT * FROM " + table + (table == "audit_log" || table == "audit_checkpoints" ? " ORDER BY seq" : "");
  if (sqlite3_prepare_v2(source, select.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    sqlite3_finalize(raw);
    return Unavailable("cannot read table " + table + " from the SQLite database");
  }
  SqliteStmt stmt(raw);
  const int columns = sqlite3_column_count(stmt.get());
  std::vector<std::string> names;
  std::vector<bool> boolean;
  std::string insert = "INSERT INTO " + table + " (";
  std::string values;
  for (int c = 0; c < columns; ++c) {
    names.emplace_back(sqlite3_column_name(stmt.get(), c));
    auto type = types->find(names.back());
    if (type == types->end()) {
      return Error::Internal("column " + table + "." + names.back() + " has no PostgreSQL counterpart");
    }
    boolean.push_back(type->second == "boolean");
    if (c > 0) {
      insert += ", ";
      values += ", ";
    }
    insert += names.back();
    values += "$" + std::to_string(c + 1);
  }
  // Identity columns take the copied values as they are.
  insert += ") OVERRIDING SYSTEM VALUE VALUES (" + values + ")";

  std::int64_t copied = 0;
  for (;;) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return Unavailable("cannot read table " + table + " from the SQLite database");
    pg::Params params;
    for (int c = 0; c < columns; ++c) {
      if (sqlite3_column_type(stmt.get(), c) == SQLITE_NULL) {
        params.AddNull();
      } else if (boolean[static_cast<std::size_t>(c)]) {
        params.Add(sqlite3_column_int64(stmt.get(), c) != 0);
      } else {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), c));
        params.Add(std::string_view(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt.get(), c))));
      }
    }
    auto inserted = target.Exec(insert.c_str(), params, "copy " + table);
    if (!inserted.ok()) {
      Error error = inserted.error();
      error.message = "copying table " + table + " failed: " + error.message;
      return error;
    }
    ++copied;
  }
  // A serial column continues after the copied values.
  if (types->count("seq") != 0) {
    auto serial = target.Exec(("SELECT pg_get_serial_sequence('" + table + "', 'seq')").c_str(), "copy " + table);
    if (serial.ok() && !serial->IsNull(0, 0)) {
      const std::string sequence = serial->Text(0, 0);
      auto set = target.Exec(
          ("SELECT setval('" + sequence + "', COALESCE((SELECT MAX(seq) FROM " + table + "), 0) + 1, false)").c_str(),
          "copy " + table);
      if (!set.ok()) return set.error();
    }
  }
  return copied;
}

Result<std::int64_t> CountSqlite(sqlite3* db, const std::string& table) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, ("SELECT COUNT(*) FROM " + table).c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    sqlite3_finalize(raw);
    return Unavailable("cannot count table " + table + " in the SQLite database");
  }
  SqliteStmt stmt(raw);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) return Unavailable("cannot count table " + table);
  return sqlite3_column_int64(stmt.get(), 0);
}

// The whole trail as now in the target (inside the copy's transaction), verified.
Result<core::ChainReport> VerifyCopiedTrail(pg::PgConnection& conn, const std::string& public_key_pem) {
  auto rows = conn.Exec(
      "SELECT seq, time_ms, principal, source, action, target, request_id, decision, rule, outcome, params_json, "
      "prev_hash, hash FROM audit_log ORDER BY seq",
      "verify the copied audit trail");
  if (!rows.ok()) return rows.error();
  std::vector<core::AuditRecord> records;
  records.reserve(static_cast<std::size_t>(rows->size()));
  for (int r = 0; r < rows->size(); ++r) {
    core::AuditRecord record;
    record.seq = rows->Int64(r, 0);
    record.entry.time_ms = rows->Int64(r, 1);
    record.entry.principal = rows->Text(r, 2);
    record.entry.source = rows->Text(r, 3);
    record.entry.action = rows->Text(r, 4);
    record.entry.target = rows->Text(r, 5);
    record.entry.request_id = rows->Text(r, 6);
    record.entry.decision = rows->Text(r, 7);
    record.entry.rule = rows->Text(r, 8);
    record.entry.outcome = rows->Text(r, 9);
    auto params = DecodeAuditParams(rows->Text(r, 10));
    if (!params) return Error::Internal("copied audit record " + std::to_string(record.seq) + " is unreadable");
    record.entry.params = std::move(*params);
    record.prev_hash = rows->Text(r, 11);
    record.hash = rows->Text(r, 12);
    records.push_back(std::move(record));
  }
  std::vector<core::AuditCheckpoint> checkpoints;
  if (!public_key_pem.empty()) {
    auto cps = conn.Exec("SELECT seq, hash, time_ms, key_id, signature FROM audit_checkpoints ORDER BY seq",
                         "verify the copied audit checkpoints");
    if (!cps.ok()) return cps.error();
    for (int r = 0; r < cps->size(); ++r) {
      checkpoints.push_back(
          core::AuditCheckpoint{cps->Int64(r, 0), cps->Text(r, 1), cps->Int64(r, 2), cps->Text(r, 3), cps->Text(r, 4)});
    }
  }
  return core::VerifyChain(records, checkpoints, public_key_pem);
}

}  // namespace

Result<CopyReport> CopySqliteToPostgres(const std::string& sqlite_path, const std::string& conninfo,
                                        const std::string& public_key_pem) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(sqlite_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(raw);
    return Unavailable("cannot open the SQLite database " + sqlite_path);
  }
  SqliteDb source(raw);
  // One read transaction: a consistent snapshot even if something else writes meanwhile.
  if (sqlite3_exec(source.get(), "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Unavailable("cannot read the SQLite database " + sqlite_path);
  }

  auto conn = pg::PgConnection::Open(conninfo);
  if (!conn.ok()) return conn.error();
  auto empty = conn->Exec(
      "SELECT (SELECT COUNT(*) FROM stores) + (SELECT COUNT(*) FROM principals) + (SELECT COUNT(*) FROM audit_log)",
      "inspect the PostgreSQL database");
  if (!empty.ok()) {
    return Unavailable("the PostgreSQL database is not at the current schema: run `storeplaned migrate` first");
  }
  if (empty->Int64(0, 0) != 0) {
    return Error{ErrorCode::kConflict,
                 "the PostgreSQL database already holds stores, principals or audit records: copy only into an "
                 "empty database",
                 {}};
  }

  CopyReport report;
  if (auto s = conn->Script("BEGIN", "copy"); !s.ok()) return s.error();
  auto rollback = [&](Error error) -> Result<CopyReport> {
    (void)conn->Script("ROLLBACK", "copy");
    return error;
  };
  for (const char* table : kTables) {
    auto copied = CopyTable(source.get(), *conn, table);
    if (!copied.ok()) return rollback(copied.error());
    auto expected = CountSqlite(source.get(), table);
    if (!expected.ok()) return rollback(expected.error());
    if (*expected != *copied) {
      return rollback(Error::Internal("table " + std::string(table) + ": read " + std::to_string(*copied) +
                                      " rows, the SQLite database has " + std::to_string(*expected)));
    }
    report.tables.emplace_back(table, *copied);
  }
  // The chain head follows the copied trail; the checkpoint interval counts from now.
  auto head = conn->Exec(
      "UPDATE audit_head SET seq = COALESCE((SELECT MAX(seq) FROM audit_log), 0), "
      "hash = COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), hash), "
      "checkpoint_seq = COALESCE((SELECT MAX(seq) FROM audit_checkpoints), 0), "
      "checkpoint_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint WHERE id = 1",
      "copy the audit chain head");
  if (!head.ok()) return rollback(head.error());

  auto verified = VerifyCopiedTrail(*conn, public_key_pem);
  if (!verified.ok()) return rollback(verified.error());
  if (!verified->ok) {
    return rollback(
        Error::Internal("the copied audit trail does not verify: " + verified->problem + " (nothing was committed)"));
  }
  report.audit_records = verified->records;
  report.audit_checkpoints_verified = verified->checkpoints_verified;
  if (auto s = conn->Script("COMMIT", "copy"); !s.ok()) return s.error();
  (void)sqlite3_exec(source.get(), "COMMIT", nullptr, nullptr, nullptr);
  return report;
}

}  // namespace storeplane::db
