// AuditChain: the head of the audit hash chain, owned by the writer thread. It seals audit
// entries (core::Seal) in commit order and inserts them inside the caller's transaction,
// keeps (last seq, last hash) in memory, puts the head back when a batch does not commit,
// and writes signed checkpoints (core::CheckpointMessage) every N records or T ms, while
// idle, and on close. The signing key is held in memory only. Private to src/db.
//
// Threading: Load() runs before the writer starts; everything else runs on the writer
// thread only (as a WriteObserver and from mutations), so there is no lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/audit.h"
#include "core/result.h"
#include "db/sqlite_handle.h"
#include "db/write_queue.h"

namespace storeplane::db {

struct AuditChainOptions {
  std::string signing_key_pem;  // Ed25519 PKCS#8 PEM; empty: no checkpoints
  int checkpoint_every_records = 1000;
  int checkpoint_every_ms = 60'000;
  std::function<std::int64_t()> now_ms;  // wall clock, Unix milliseconds
};

class AuditChain final : public WriteObserver {
 public:
  // Reads the chain head and the newest checkpoint through `conn`. kInvalidArgument when
  // the signing key is not an Ed25519 private key.
  static Result<std::shared_ptr<AuditChain>> Load(Connection& conn, AuditChainOptions options);

  ~AuditChain() override;
  AuditChain(const AuditChain&) = delete;
  AuditChain& operator=(const AuditChain&) = delete;

  // Seals `entries` after the head, in order, and inserts them on `conn` (inside the
  // caller's transaction). On success the head moves and the assigned seqs are returned;
  // on error nothing moved (the caller's savepoint discards any rows already inserted).
  // Call it last in a mutation, so that nothing after it can fail.
  Result<std::vector<std::int64_t>> Append(Connection& conn, const std::vector<core::AuditEntry>& entries);

  std::int64_t head_seq() const { return head_.seq; }
  bool signs() const { return !private_pem_.empty(); }

  // WriteObserver.
  void OnBatchBegin() override;
  void BeforeCommit(Connection& conn) override;  // checkpoint, if due, inside the batch
  void OnBatchRolledBack() override;
  void OnIdle(Connection& conn) override;   // checkpoint, if due by time, in its own transaction
  void OnClose(Connection& conn) override;  // final checkpoint if the head moved

  explicit AuditChain(AuditChainOptions options);  // use Load()

 private:
  struct Head {
    std::int64_t seq = 0;
    std::string hash{core::kGenesisHash};
  };
  struct CheckpointState {
    std::int64_t seq = 0;  // seq covered by the newest checkpoint (0: none)
    std::int64_t time_ms = 0;
  };

  bool CheckpointDue(std::int64_t now_ms) const;
  // Signs and inserts a checkpoint over the head; moves checkpoint_ on success.
  Status InsertCheckpoint(Connection& conn, std::int64_t now_ms);
  void CheckpointInOwnTransaction(Connection& conn);

  AuditChainOptions options_;
  std::string private_pem_;
  std::string key_id_;
  Head head_;
  CheckpointState checkpoint_;
  Head batch_head_;  // as at OnBatchBegin(), restored when the batch does not commit
  CheckpointState batch_checkpoint_;
};

// params <-> the JSON object stored in audit_log.params_json.
std::string EncodeAuditParams(const std::map<std::string, std::string>& params);
std::optional<std::map<std::string, std::string>> DecodeAuditParams(const std::string& json);

}  // namespace storeplane::db
