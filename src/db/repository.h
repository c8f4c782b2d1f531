// The storage interface every handler uses. Implementations: SqliteRepository (embedded
// default) and, later, a PostgreSQL one; handlers never see SQL. All methods are
// thread-safe and blocking: call them from the worker pool, never from an I/O thread.
// Errors are values (never exceptions): kNotFound, kAlreadyExists, kPreconditionFailed,
// kUnavailable (database trouble, safe to retry), kInternal.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/audit.h"
#include "core/label_selector.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::db {

struct StoreQuery {
  std::optional<std::string> environment;
  std::optional<core::IsolationMode> isolation_mode;
  std::optional<core::StoreState> state;
  core::LabelSelector selector;
  // Object scope: only stores for which this returns true are listed (and they count
  // towards `limit` only then). Empty = every store.
  std::function<bool(const core::Store&)> visible;
  std::string after_id;  // cursor: return stores with id > after_id, ordered by id
  int limit = 50;        // 1..1000
};

struct StorePage {
  std::vector<core::Store> items;
  std::string next_after_id;  // empty when there are no more matches
};

// Who is calling: an operator or a service account. Roles are evaluated by the
// authority layer; the repository only stores them.
struct Principal {
  std::string id;
  std::string name;
  std::string kind;  // "operator" | "service"
  std::vector<std::string> roles;
  std::int64_t created_at_ms = 0;
};

// A bearer token, stored only as the hex SHA-256 of the token text.
struct TokenRecord {
  std::string token_hash;
  std::string principal_id;
  std::string description;
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> expires_at_ms;
  std::string id;  // public handle, "tok_" + hex; never derived from the token text
  std::optional<std::int64_t> revoked_at_ms;
  // The principal whose request created this token ("system" for the bootstrap token).
  // A token never approves a change requested by its creator (separation of duties).
  std::string created_by;
};

// A change request waiting for approvals (two-person rule).
struct ChangeRequest {
  std::string id;             // "chg_" + hex
  std::string action;         // the catalog action requested, e.g. "store.register"
  std::string target;         // "store/<id>"
  std::string environment;    // of the target
  std::string requester;      // principal id
  std::string request_body;   // the original JSON body, validated again when executed
  std::string approval_rule;  // core::ApprovalRule::id that applied
  int approvals_needed = 1;
  std::vector<std::string> approvers;  // principal ids, in order of approval
  std::string status;                  // "pending" | "executed" | "rejected" | "expired" | "failed"
  std::string outcome;                 // detail for executed/failed/rejected
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::int64_t version = 1;  // optimistic concurrency, like stores
};

struct AuditQuery {
  std::int64_t after_seq = 0;  // cursor
  int limit = 100;             // 1..1000
  std::optional<std::string> principal;
  std::optional<std::string> action;
  std::optional<std::string> target;
};

struct AuditPage {
  std::vector<core::AuditRecord> items;
  std::int64_t next_after_seq = 0;  // 0 when there are no more matches
};

// The remembered answer to a POST carrying an Idempotency-Key, scoped per principal.
struct IdempotencyRecord {
  std::string principal_id;
  std::string key;
  std::string request_hash;  // hex SHA-256 of method, path and body
  int status = 0;
  std::string response_body;
  std::string location;  // Location header of the original response, if any
  std::int64_t created_at_ms = 0;
};

// ---- Typed effects, applied atomically with their audit records ------------------------
struct InsertStoreEffect {
  core::Store store;
};
struct UpdateStoreEffect {
  core::Store updated;
  std::int64_t expected_version;
};
// The principal row is upserted (name and kind); the token is inserted for it.
struct InsertTokenEffect {
  Principal principal;
  TokenRecord token;
};
struct RevokeTokenEffect {
  std::string token_id;
  std::int64_t revoked_at_ms;
};
struct InsertChangeEffect {
  ChangeRequest change;
};
struct UpdateChangeEffect {
  ChangeRequest updated;
  std::int64_t expected_version;
};
using Effect = std::variant<InsertStoreEffect, UpdateStoreEffect, InsertTokenEffect, RevokeTokenEffect,
                            InsertChangeEffect, UpdateChangeEffect>;

// One transaction: every effect in order, the idempotency record, and the audit entries
// (sealed into the hash chain in order). All or nothing. A batch with effects but no audit
// entry is refused (kInternal): no audit, no change.
struct WriteBatch {
  std::vector<Effect> effects;
  std::vector<core::AuditEntry> audit;
  std::optional<IdempotencyRecord> idempotency;
};

// What the batch produced: the stored store/change rows (in effect order, where the effect
// yields one) and the audit sequence numbers assigned.
struct WriteResult {
  std::vector<core::Store> stores;
  std::vector<ChangeRequest> changes;
  std::vector<std::int64_t> audit_seqs;
};

class Repository {
 public:
  virtual ~Repository() = default;

  virtual Result<core::Store> GetStore(std::string_view id) = 0;
  // Stores matching every filter of `query` and its `visible` predicate, ordered by id.
  virtual Result<StorePage> ListStores(const StoreQuery& query) = 0;
  virtual Result<std::int64_t> CountStores() = 0;

  virtual Result<std::int64_t> CountPrincipals() = 0;

  virtual Result<std::optional<IdempotencyRecord>> FindIdempotency(std::string_view principal_id,
                                                                   std::string_view key) = 0;

  // Applies a WriteBatch in one transaction of the writer (group-committed with others).
  // Errors of any effect fail the whole batch, and then no audit record is written either:
  // kAlreadyExists (a store id ever used, a token or change id taken), kPreconditionFailed
  // (stale expected_version), kNotFound, kConflict (token already revoked, idempotency key
  // already used), kUnavailable (not committed; safe to retry), kInternal (no audit entry,
  // or an update that does not advance the version by one).
  virtual Result<WriteResult> Apply(const WriteBatch& batch) = 0;
  // Appends audit records that describe no change (reads, denials). With wait=false the
  // call returns once queued; the record is written with the next batch.
  virtual Status AppendAudit(const core::AuditEntry& entry, bool wait) = 0;

  // Records with seq > after_seq matching every filter set, in seq order.
  virtual Result<AuditPage> ListAudit(const AuditQuery& query) = 0;
  // Checkpoints with seq > after_seq, in order.
  virtual Result<std::vector<core::AuditCheckpoint>> ListCheckpoints(std::int64_t after_seq, int limit) = 0;

  // The token with this hash, revoked or expired ones included: the caller decides.
  virtual Result<std::optional<TokenRecord>> FindTokenByHash(std::string_view token_hash) = 0;
  // Oldest first; every principal's when principal_id is not set.
  virtual Result<std::vector<TokenRecord>> ListTokens(const std::optional<std::string>& principal_id) = 0;
  virtual Result<std::optional<TokenRecord>> GetToken(std::string_view token_id) = 0;

  virtual Result<ChangeRequest> GetChange(std::string_view id) = 0;
  // Newest first; `status` filters when set.
  virtual Result<std::vector<ChangeRequest>> ListChanges(const std::optional<std::string>& status, int limit) = 0;

  // Cheap liveness check of the database, for /readyz.
  virtual Status Ping() = 0;
};

}  // namespace storeplane::db
