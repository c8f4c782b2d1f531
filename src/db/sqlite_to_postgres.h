// Moving an existing SQLite installation to PostgreSQL (`storeplaned migrate --from-sqlite`):
// every row of every table is copied, in one PostgreSQL transaction, into a database that
// has the current schema and holds nothing yet; the audit chain head and the sequences are
// set to follow the copied rows; then the copy is checked (row counts per table, and the
// audit hash chain and its signed checkpoints verified as read back from PostgreSQL). The
// SQLite file is only read. Either everything is copied and verified, or nothing is
// committed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"

namespace storeplane::db {

struct CopyReport {
  std::vector<std::pair<std::string, std::int64_t>> tables;  // table -> rows copied, in copy order
  std::int64_t audit_records = 0;                            // verified after the copy
  std::int64_t audit_checkpoints_verified = 0;
};

// `sqlite_path` must be at the current SQLite schema (open it with OpenSqliteRepository
// first, which migrates it); `conninfo` names a PostgreSQL database at the current schema
// (MigratePostgres) with no stores, principals or audit records. `public_key_pem` verifies
// the checkpoints ("" skips signature checks, not the chain). kConflict when the target
// is not empty; kUnavailable when either database cannot be used; kInternal when the
// copy does not verify (nothing is committed then).
Result<CopyReport> CopySqliteToPostgres(const std::string& sqlite_path, const std::string& conninfo,
                                        const std::string& public_key_pem);

}  // namespace storeplane::db
