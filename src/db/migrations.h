// Versioned schema migrations for the SQLite back end. Each migration runs in its own
// transaction and is recorded in schema_migrations(version, applied_at); a database whose
// version is newer than this build knows is refused, never touched.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/result.h"
#include "db/sqlite_handle.h"

namespace storeplane::db {

struct Migration {
  int version;
  std::string_view description;
  const char* sql;  // one or more statements
};

// All migrations, in ascending version order.
std::span<const Migration> AllMigrations();
int LatestSchemaVersion();

// The highest applied version (0 for a fresh database).
Result<int> CurrentSchemaVersion(Connection& conn);

// Brings the database up to LatestSchemaVersion(). Must run on a read-write connection
// before any other use. kUnavailable when the schema is newer than this build knows or
// the database cannot be written; applied_at_ms is recorded for each applied step.
Status ApplyMigrations(Connection& conn, std::int64_t applied_at_ms);

}  // namespace storeplane::db
