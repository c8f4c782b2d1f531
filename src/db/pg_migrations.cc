// The PostgreSQL schema's versions and the runner that applies them (MigratePostgres),
// under a session advisory lock so that replicas started together migrate once.
#include <string>
#include <vector>

#include "db/pg_repository_impl.h"

namespace storeplane::db {

namespace {

constexpr std::int64_t kMigrationLockKey = 0x6d69677261ll;  // "migra"

constexpr const char* kCreateVersions =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at_ms bigint NOT NULL)";
constexpr const char* kSelectVersion = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
constexpr const char* kTableExists = "SELECT to_regclass('schema_migrations') IS NOT NULL";
constexpr const char* kInsertVersion =
    "INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, (extract(epoch FROM clock_timestamp()) * "
    "1000)::bigint)";

// Version n is kMigrations[n - 1]: the text of every statement it runs.
std::vector<std::string> Migrations() {
  std::vector<std::string> out;
  // v1: the whole schema as of the first PostgreSQL release (SQLite schema v6).
  out.push_back(std::string(pg_detail::kCoreSchema) + pg_detail::kStoresSchema + pg_detail::kAgentsSchema +
                pg_detail::kRunsSchema + pg_detail::kRolloutsSchema);
  return out;
}

Error Unavailable(const Error& cause) {
  return Error{ErrorCode::kUnavailable, "cannot migrate the PostgreSQL schema: " + cause.message, {}};
}

Result<int> ReadVersion(pg::PgConnection& conn) {
  auto exists = conn.Exec(kTableExists, "read schema version");
  if (!exists.ok()) return exists.error();
  if (!exists->Bool(0, 0)) return 0;
  auto rows = conn.Exec(kSelectVersion, "read schema version");
  if (!rows.ok()) return rows.error();
  return static_cast<int>(rows->Int64(0, 0));
}

}  // namespace

int PostgresTargetSchemaVersion() { return static_cast<int>(Migrations().size()); }

Result<int> PostgresSchemaVersion(const std::string& conninfo) {
  auto conn = pg::PgConnection::Open(conninfo);
  if (!conn.ok()) return conn.error();
  return ReadVersion(*conn);
}

Result<int> MigratePostgres(const std::string& conninfo) {
  auto conn = pg::PgConnection::Open(conninfo);
  if (!conn.ok()) return conn.error();
  // Waits for a concurrent migration to finish; released when this connection closes.
  if (auto locked = conn->Exec("SELECT pg_advisory_lock($1)", pg::Params().Add(kMigrationLockKey), "lock migrations");
      !locked.ok()) {
    return Unavailable(locked.error());
  }
  if (auto s = conn->Script(kCreateVersions, "create schema_migrations"); !s.ok()) return Unavailable(s.error());
  auto current = ReadVersion(*conn);
  if (!current.ok()) return Unavailable(current.error());
  const auto migrations = Migrations();
  const int target = static_cast<int>(migrations.size());
  if (*current > target) {
    return Error{ErrorCode::kUnavailable,
                 "the PostgreSQL schema is at version " + std::to_string(*current) + ", newer than this storeplaned (" +
                     std::to_string(target) + "): upgrade storeplaned",
                 {}};
  }
  for (int version = *current + 1; version <= target; ++version) {
    const std::string what = "apply schema migration " + std::to_string(version);
    std::string script = "BEGIN;\n" + migrations[static_cast<std::size_t>(version - 1)];
    if (auto s = conn->Script(script, what); !s.ok()) {
      (void)conn->Script("ROLLBACK", what);
      return Unavailable(s.error());
    }
    if (auto inserted = conn->Exec(kInsertVersion, pg::Params().Add(version), what); !inserted.ok()) {
      (void)conn->Script("ROLLBACK", what);
      return Unavailable(inserted.error());
    }
    if (auto s = conn->Script("COMMIT", what); !s.ok()) return Unavailable(s.error());
  }
  return target;
}

}  // namespace storeplane::db
