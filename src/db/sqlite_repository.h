// SqliteRepository: the embedded default back end. WAL mode, synchronous=FULL.
// One writer thread (WriteQueue) owns the write connection and commits queued mutations
// in batches, one transaction and one fsync per batch (group commit); each mutation runs
// in its own SAVEPOINT so one failure does not fail its batch. Reads use a small pool of
// read-only connections. Migrations are applied by Open().
#pragma once

#include <memory>
#include <string>

#include "db/repository.h"

namespace storeplane::db {

struct SqliteOptions {
  std::string path;          // database file; created if missing
  bool group_commit = true;  // false: one transaction per mutation (for comparison)
  int max_batch = 512;       // most mutations in one transaction
  int read_connections = 4;
  int busy_timeout_ms = 5000;
};

class SqliteRepository;

// Opens (creating and migrating as needed). Errors: kUnavailable with a safe message.
Result<std::unique_ptr<Repository>> OpenSqliteRepository(const SqliteOptions& options);

}  // namespace storeplane::db
