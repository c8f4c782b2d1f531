// PostgresRepository: the back end for several storeplaned replicas on one PostgreSQL
// (ADR 0012). Every call runs on a pooled libpq connection; a WriteBatch is one
// transaction. Guarantees come from the schema, not from isolation-level luck: unique
// indexes (ids, one active run per store, one trigger per run, idempotency keys, callback
// deliveries), CHECKs on every closed value, versions on every updated row, and a chain
// head row taken FOR UPDATE so that the audit hash chain stays linear across replicas. A
// trigger refuses UPDATE and DELETE on the audit trail. Migrations are applied by Migrate()
// (`storeplaned migrate`) or, when `migrate` is set, by Open(), under an advisory lock.
#pragma once

#include <memory>
#include <string>

#include "db/repository.h"

namespace storeplane::db {

struct PostgresOptions {
  std::string conninfo;  // a libpq connection string; never logged
  int pool_size = 8;     // connections for requests (plus one for LISTEN)
  bool migrate = true;   // apply pending migrations at open (else: refuse an old schema)
  // Audit checkpoints, as SqliteOptions: signed by whichever replica's write makes one due.
  std::string signing_key_pem;
  int checkpoint_every_records = 1000;
  int checkpoint_every_ms = 60'000;
};

// Opens (migrating when options.migrate). kUnavailable with a safe message (never the
// conninfo); kFailedPrecondition-like kConflict when the schema is newer than this binary
// or older and migrate is off.
Result<std::unique_ptr<Repository>> OpenPostgresRepository(const PostgresOptions& options);

// Applies every pending migration under an advisory lock (concurrent callers wait, then
// find nothing to do). Returns the schema version now in force.
Result<int> MigratePostgres(const std::string& conninfo);
// The version the database is at (0 for an empty database) and the one this binary wants.
Result<int> PostgresSchemaVersion(const std::string& conninfo);
int PostgresTargetSchemaVersion();

}  // namespace storeplane::db
