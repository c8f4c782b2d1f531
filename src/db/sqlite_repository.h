// SqliteRepository: the embedded default back end. WAL mode, synchronous=FULL.
// One writer thread (WriteQueue) owns the write connection and commits queued mutations
// in batches, one transaction and one fsync per batch (group commit); each mutation runs
// in its own SAVEPOINT so one failure does not fail its batch. The writer also owns the
// audit chain head (db/audit_chain.h): audit records are sealed in commit order inside the
// transaction of the change they describe, and signed checkpoints are written inside the
// batch that makes one due, while idle when one is due by time, and on close. Reads use a
// small pool of read-only connections. Migrations are applied by Open(). See ADR 0006.
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
  // Audit checkpoints: the writer signs (seq, hash) of the newest record with this Ed25519
  // key (PKCS#8 PEM; held in memory only, never written to the database) after every
  // `checkpoint_every_records` records or `checkpoint_every_ms` since the last one, and on
  // close. Empty key: no checkpoints.
  std::string signing_key_pem;
  int checkpoint_every_records = 1000;
  int checkpoint_every_ms = 60'000;
};

class SqliteRepository;

// Opens (creating and migrating as needed). Errors: kUnavailable with a safe message.
Result<std::unique_ptr<Repository>> OpenSqliteRepository(const SqliteOptions& options);

}  // namespace storeplane::db
