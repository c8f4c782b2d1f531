// The storage interface every handler uses. Implementations: SqliteRepository (embedded
// default, one process) and PostgresRepository (several replicas, ADR 0012); handlers never
// see SQL. All methods are
// thread-safe and blocking: call them from the worker pool, never from an I/O thread.
// Errors are values (never exceptions): kNotFound, kAlreadyExists, kPreconditionFailed,
// kUnavailable (database trouble, safe to retry), kInternal.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
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

// A one-time enrollment token for a store's agent, stored only as the hex SHA-256 of its text.
struct EnrollmentToken {
  std::string id;  // "enr_" + hex, public handle
  std::string token_hash;
  std::string store_id;
  std::string created_by;  // principal id
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::optional<std::int64_t> used_at_ms;  // set once, when an agent enrolls with it
};

// A store's enrolled agent: at most one per store. Enrolling again (with a new token)
// replaces the credential and the agent id. The telemetry fields hold the last values
// written by WriteTelemetry (the server keeps the live ones in memory).
struct AgentRecord {
  std::string store_id;
  std::string id;               // "agt_" + hex, new at each enrollment
  std::string credential_hash;  // hex SHA-256 of the agent's credential
  std::int64_t enrolled_at_ms = 0;
  std::optional<std::int64_t> rotated_at_ms;
  std::optional<std::int64_t> revoked_at_ms;  // a revoked agent authenticates no more
  // Telemetry.
  std::string agent_version;
  std::optional<std::int64_t> last_seen_ms;
  std::string availability = "never_seen";  // core::Availability text
  std::string health = "unknown";           // core::Health text
  std::optional<std::string> release;
  std::optional<std::string> reported_isolation;  // core::IsolationMode text
  std::vector<std::string> allowed_operations;    // operation names
  std::string checks_json = "[]";                 // protocol::ChecksToJson
};

// One operation request to a store's agent.
struct OperationRecord {
  std::string id;  // "op_" + hex
  std::string store_id;
  std::string name;                // core::OperationName text
  std::string params_json = "{}";  // protocol::ParamsToJson
  std::string state = "queued";    // core::OperationState text
  std::string code;                // failure code, "" otherwise
  std::string result_json;         // protocol::ResultToJson on success, "" otherwise
  std::string requested_by;        // principal id
  std::string request_id;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // still queued or unfinished then -> expired
  int timeout_s = 60;
  std::optional<std::int64_t> delivered_at_ms;
  std::string delivered_session;  // the agent session it was last handed to
  int delivery_count = 0;
  std::optional<std::int64_t> finished_at_ms;
  std::int64_t version = 1;  // optimistic concurrency
};

// The last success of one operation, check or pipeline kind on one store.
struct LastSuccess {
  std::string store_id;
  std::string kind;  // "operation" | "check" | "pipeline"
  std::string name;  // e.g. "cache.flush", "disk", "deploy"
  std::int64_t at_ms = 0;
  std::string ref;  // operation id, run id, or "" for checks
};

// One CI/CD pipeline run (core/pipeline_run.h). At most one active run per store is
// enforced by the database (a unique index over the active ones), not by luck.
struct PipelineRunRecord {
  std::string id;  // "run_" + hex; also the correlation id sent to the provider
  std::string store_id;
  std::string kind;              // core::RunKind text
  std::string state;             // core::RunState text
  bool active = true;            // core::IsActive(kind, state), kept by the writer of the row
  std::string release;           // deploy/rollback: the release put in place; "" otherwise
  std::string previous_release;  // the store's current release when requested
  std::string target_isolation;  // isolation_migration: the mode migrated to
  std::string provider;          // the configured provider name chosen for it
  std::string external_id;       // the provider's id, once known
  std::string external_url;
  std::string requested_by;  // principal id, or "system" for automatic rollbacks
  std::string request_id;
  std::string reason;          // why, e.g. "automatic rollback: run_x failed its health gate"
  std::string outcome_detail;  // a machine code from the provider or the gate
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::optional<std::int64_t> triggered_at_ms;
  std::optional<std::int64_t> finished_at_ms;
  std::int64_t deadline_ms = 0;  // no outcome by then -> timed_out
  std::optional<std::int64_t> gate_opened_at_ms;
  int gate_streak = 0;
  std::int64_t version = 1;
  // The pipeline reported that this run changed the database schema: rolling it back is
  // never automatic (it waits for an approved rollback).
  bool schema_changed = false;
  std::string rollout_id;  // the fleet rollout that requested it; "" otherwise
};

// A trigger waiting to be sent: written in the same transaction as its run (the outbox).
struct OutboxEntry {
  std::int64_t seq = 0;  // assigned on insert
  std::string run_id;    // unique: one trigger per run
  std::string provider;
  std::int64_t created_at_ms = 0;
  std::int64_t next_attempt_at_ms = 0;
  int attempts = 0;
  std::string last_error;                  // a safe message, never a credential
  std::optional<std::int64_t> sent_at_ms;  // once the provider accepted (or the run was found to exist)
  std::int64_t version = 1;
};

// A fleet rollout (core/rollout.h): its spec and plan, fixed at creation, and its progress.
// The targets are stored one row per planned store (RolloutTargetRecord).
struct RolloutRecord {
  std::string id;           // "rol_" + hex
  std::string environment;  // the selector's environment: the rollout's authority scope
  std::string release;
  std::string spec_json;    // the validated spec, as the API shows it
  std::string plan_json;    // the waves of store ids: [["a","b"],["c","d","e"]]
  std::string state;        // core::RolloutState text
  std::string paused_from;  // core::RolloutState text, "" unless paused
  int current_wave = 0;
  std::optional<std::int64_t> resume_at_ms;
  std::string ending;  // "" | "failure_budget" | "abort"
  bool rollback_on_abort = false;
  int failed_deploys = 0;
  std::string counts_json = "{}";  // core::CountTargets as the API shows it, kept by each step
  std::string created_by;          // principal id
  std::string request_id;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::optional<std::int64_t> finished_at_ms;
  std::int64_t version = 1;  // optimistic concurrency, like stores
};

// One planned store of a rollout (core::TargetProgress); "" for absent optional texts.
struct RolloutTargetRecord {
  std::string rollout_id;
  std::string store_id;
  int position = 0;  // its index in the plan order (0-based), unique per rollout
  int wave = 0;
  std::string state = "waiting";  // core::TargetState text
  std::string skip_reason;        // core::SkipReason text
  std::string deploy_run_id;
  std::string deploy_final_state;  // core::RunState text
  std::string previous_release;
  std::string rollback_run_id;
  std::string rollback_final_state;
  std::int64_t updated_at_ms = 0;
};

// An operator's command to a rollout, waiting in the inbox until the orchestrator's next step
// consumes it (core::RolloutCommand).
struct RolloutCommandRecord {
  std::int64_t seq = 0;  // assigned on insert, increasing
  std::string rollout_id;
  std::string kind;  // core::RolloutCommandKind text
  int wave = 0;
  bool rollback = false;
  std::string principal_id;
  std::string request_id;
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
struct InsertEnrollmentTokenEffect {
  EnrollmentToken token;
};
// Marks the token used (kConflict when it already is, kNotFound when unknown) and inserts or
// replaces the store's agent row with `agent` (its telemetry reset to never_seen).
struct EnrollAgentEffect {
  std::string enrollment_token_id;
  std::int64_t used_at_ms = 0;
  AgentRecord agent;
};
// Replaces the credential of the store's agent, when its id is still `agent_id` (else
// kPreconditionFailed; kNotFound without an agent).
struct RotateAgentCredentialEffect {
  std::string store_id;
  std::string agent_id;
  std::string credential_hash;
  std::int64_t rotated_at_ms = 0;
};
// kNotFound without an agent, kConflict when already revoked.
struct RevokeAgentEffect {
  std::string store_id;
  std::int64_t revoked_at_ms = 0;
};
struct InsertOperationEffect {
  OperationRecord operation;
};
// kPreconditionFailed when the stored version is not expected_version; `updated.version`
// must be expected_version + 1.
struct UpdateOperationEffect {
  OperationRecord updated;
  std::int64_t expected_version;
};
struct UpsertLastSuccessEffect {
  LastSuccess success;
};
// Inserts the run and its outbox entry. kAlreadyExists on a taken id; kConflict when the
// store already has an active run (the unique index).
struct InsertRunEffect {
  PipelineRunRecord run;
  OutboxEntry outbox;
};
// kPreconditionFailed on a stale version; updated.version must be expected_version + 1.
// kConflict when it would make a second active run for the store.
struct UpdateRunEffect {
  PipelineRunRecord updated;
  std::int64_t expected_version;
};
// kPreconditionFailed on a stale version; updated.version must be expected_version + 1.
struct UpdateOutboxEffect {
  OutboxEntry updated;
  std::int64_t expected_version;
};
// A callback delivery id seen from a provider: kAlreadyExists when it was seen before, so a
// replayed delivery cannot move anything (and concurrent duplicates make one transition).
struct InsertCallbackDeliveryEffect {
  std::string provider;
  std::string delivery_id;
  std::string run_id;
  std::int64_t received_at_ms = 0;
};
// kAlreadyExists on a taken rollout id. Inserts every target with it.
struct InsertRolloutEffect {
  RolloutRecord rollout;
  std::vector<RolloutTargetRecord> targets;
};
// kPreconditionFailed on a stale version; updated.version must be expected_version + 1.
// Replaces the named targets (kNotFound when one is not a target of the rollout) and deletes
// the rollout's commands with seq <= consumed_commands_through (0: none).
struct UpdateRolloutEffect {
  RolloutRecord updated;
  std::int64_t expected_version = 0;
  std::vector<RolloutTargetRecord> changed_targets;
  std::int64_t consumed_commands_through = 0;
};
// kNotFound when the rollout does not exist. The seq is assigned by the database.
struct InsertRolloutCommandEffect {
  RolloutCommandRecord command;
};
using Effect =
    std::variant<InsertStoreEffect, UpdateStoreEffect, InsertTokenEffect, RevokeTokenEffect, InsertChangeEffect,
                 UpdateChangeEffect, InsertEnrollmentTokenEffect, EnrollAgentEffect, RotateAgentCredentialEffect,
                 RevokeAgentEffect, InsertOperationEffect, UpdateOperationEffect, UpsertLastSuccessEffect,
                 InsertRunEffect, UpdateRunEffect, UpdateOutboxEffect, InsertCallbackDeliveryEffect,
                 InsertRolloutEffect, UpdateRolloutEffect, InsertRolloutCommandEffect>;

// Leader-only work carries the fencing token of the lease it holds (ADR 0012). The batch
// commits only if that lease is still this holder's with this token, checked inside the
// same transaction; else kPreconditionFailed and nothing is written. SQLite (one process,
// always leader) ignores it.
struct Fence {
  std::string holder;
  std::int64_t token = 0;
};

// One transaction: every effect in order, the idempotency record, and the audit entries
// (sealed into the hash chain in order). All or nothing. A batch with effects but no audit
// entry is refused (kInternal): no audit, no change.
struct WriteBatch {
  std::vector<Effect> effects;
  std::vector<core::AuditEntry> audit;
  std::optional<IdempotencyRecord> idempotency;
  std::optional<Fence> fence;  // set by leader-only work
};

// What the batch produced: the stored store/change rows (in effect order, where the effect
// yields one) and the audit sequence numbers assigned.
struct WriteResult {
  std::vector<core::Store> stores;
  std::vector<ChangeRequest> changes;
  std::vector<OperationRecord> operations;  // inserted or updated, in effect order
  std::vector<PipelineRunRecord> runs;      // inserted or updated, in effect order
  std::vector<RolloutRecord> rollouts;      // inserted or updated, in effect order
  std::vector<std::int64_t> audit_seqs;
};

// Told of every committed WriteBatch, in commit order, on the writer's thread (the event
// stream's source). Must be quick and must not call the repository.
using CommitListener = std::function<void(const WriteBatch&, const WriteResult&)>;

// An event of the live stream as the shared event log keeps it (back ends whose replicas
// share events: SharesEvents()). `data_json` is the event's payload object; seq is assigned
// by the log, increasing in commit order across every replica.
struct StoredEvent {
  std::int64_t seq = 0;
  std::string type;  // "store.updated", ...
  std::string store_id;
  std::string read_action;
  std::string environment;
  std::int64_t at_ms = 0;
  std::string data_json = "{}";
};
// Turns a batch into the events it causes, inside its transaction (so they commit with
// it). Must be quick and must not call the repository.
using EventEncoder = std::function<std::vector<StoredEvent>(const WriteBatch&, const WriteResult&)>;

// What a replica is woken for by other replicas (ADR 0012).
struct Notification {
  enum class Kind { kEvents, kOperationQueued };
  Kind kind = Kind::kEvents;
  std::string payload;  // kEvents: the newest seq; kOperationQueued: the store id
};

class Repository {
 public:
  virtual ~Repository() = default;

  // Set once, before traffic starts.
  void SetCommitListener(CommitListener listener) { commit_listener_ = std::move(listener); }
  void SetEventEncoder(EventEncoder encoder) { event_encoder_ = std::move(encoder); }

  // ---- Replicas (ADR 0012) ---------------------------------------------------------------
  // Takes or renews the leader lease for `holder` for `lease_ms`, judged by the database's
  // clock. The fencing token when `holder` holds it after the call (it increases on every
  // change of holder), nullopt when another holder's lease is still running. SQLite: always
  // token 1.
  virtual Result<std::optional<std::int64_t>> AcquireLeadership(std::string_view holder, std::int64_t lease_ms) {
    (void)holder;
    (void)lease_ms;
    return std::optional<std::int64_t>(1);
  }
  // Gives the lease up now when `holder` holds it (a clean shutdown), so another replica need
  // not wait for it to expire.
  virtual Status ReleaseLeadership(std::string_view holder) {
    (void)holder;
    return Status::Ok();
  }
  // True when events are kept in a log shared by replicas (the EventEncoder's output and
  // AppendEvents), read back with ReadEvents; false (SQLite): the commit listener feeds the
  // one process's stream directly.
  virtual bool SharesEvents() const { return false; }
  // The shared log's identity: event ids are "<epoch>-<seq>" on every replica.
  virtual std::string EventEpoch() { return {}; }
  // Appends events that no batch caused (agents' availability), in their own transaction.
  virtual Status AppendEvents(const std::vector<StoredEvent>& events) {
    (void)events;
    return Status::Ok();
  }
  // Events with seq > after_seq, oldest first, at most `limit`.
  virtual Result<std::vector<StoredEvent>> ReadEvents(std::int64_t after_seq, int limit) {
    (void)after_seq;
    (void)limit;
    return std::vector<StoredEvent>{};
  }
  // The newest seq in the log (0 when empty).
  virtual Result<std::int64_t> LastEventSeq() { return std::int64_t{0}; }
  // Deletes events older than `before_ms` (the leader's retention job); how many went.
  virtual Result<std::int64_t> PruneEvents(std::int64_t before_ms) {
    (void)before_ms;
    return std::int64_t{0};
  }
  // Blocks up to timeout_ms for notifications from other replicas (and this one); empty
  // on timeout. Called by one listener thread per process. SQLite: sleeps and returns none.
  virtual Result<std::vector<Notification>> WaitForNotifications(int timeout_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return std::vector<Notification>{};
  }

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

  // ---- Agents and operations ----------------------------------------------------------
  virtual Result<std::optional<EnrollmentToken>> FindEnrollmentTokenByHash(std::string_view token_hash) = 0;
  virtual Result<std::optional<AgentRecord>> GetAgent(std::string_view store_id) = 0;
  // Every agent row (revoked ones included), ordered by store id: the server loads them
  // into memory at start.
  virtual Result<std::vector<AgentRecord>> ListAgents() = 0;

  virtual Result<OperationRecord> GetOperation(std::string_view id) = 0;  // kNotFound
  // A store's operations, newest first; `before_id` is a cursor (operations created before
  // that one). limit 1..1000.
  virtual Result<std::vector<OperationRecord>> ListOperations(std::string_view store_id, std::string_view before_id,
                                                              int limit) = 0;
  // Every operation still queued or delivered, of every store, oldest first.
  virtual Result<std::vector<OperationRecord>> ListOpenOperations() = 0;
  // A store's last successes, ordered by kind then name.
  virtual Result<std::vector<LastSuccess>> ListLastSuccesses(std::string_view store_id) = 0;

  // ---- Pipeline runs and the outbox ----------------------------------------------------
  virtual Result<PipelineRunRecord> GetRun(std::string_view id) = 0;  // kNotFound
  struct RunQuery {
    std::optional<std::string> store_id;
    std::optional<std::string> state;
    bool active_only = false;
    std::optional<std::string> rollout_id;  // only runs requested by this rollout
    std::string before_id;                  // cursor: runs created before this one
    int limit = 50;                         // 1..1000
  };
  // Newest first.
  virtual Result<std::vector<PipelineRunRecord>> ListRuns(const RunQuery& query) = 0;
  // Every active run, oldest first (the reconcilers' work list).
  virtual Result<std::vector<PipelineRunRecord>> ListActiveRuns() = 0;
  // Unsent entries with next_attempt_at_ms <= now, oldest first.
  virtual Result<std::vector<OutboxEntry>> ListDueOutbox(std::int64_t now_ms, int limit) = 0;
  virtual Result<std::optional<OutboxEntry>> GetOutbox(std::string_view run_id) = 0;
  // Releases a store reached through verified deploy/rollback runs, newest first.
  virtual Result<std::vector<std::string>> ListVerifiedReleases(std::string_view store_id, int limit) = 0;

  // ---- Fleet rollouts ------------------------------------------------------------------
  virtual Result<RolloutRecord> GetRollout(std::string_view id) = 0;  // kNotFound
  struct RolloutQuery {
    std::optional<std::string> environment;
    std::optional<std::string> state;  // core::RolloutState text
    bool active_only = false;          // only rollouts not in a final state
    std::string before_id;             // cursor: rollouts created before this one
    int limit = 50;                    // 1..1000
  };
  // Newest first (created_at, then id).
  virtual Result<std::vector<RolloutRecord>> ListRollouts(const RolloutQuery& query) = 0;
  // Every rollout not in a final state, oldest first (the orchestrator's work list).
  virtual Result<std::vector<RolloutRecord>> ListActiveRollouts() = 0;
  struct RolloutTargetQuery {
    std::optional<int> wave;
    std::optional<std::string> state;  // core::TargetState text
    int after_position = -1;           // cursor: targets with position > after_position
    int limit = 0;                     // 0: every match; else 1..1000
  };
  // A rollout's targets in position order (kNotFound when the rollout does not exist).
  virtual Result<std::vector<RolloutTargetRecord>> ListRolloutTargets(std::string_view rollout_id,
                                                                      const RolloutTargetQuery& query) = 0;
  // A rollout's commands not consumed yet, in seq order.
  virtual Result<std::vector<RolloutCommandRecord>> ListRolloutCommands(std::string_view rollout_id) = 0;

  // Observations, not changes of authority, so no audit record: agents' telemetry (the row
  // must exist with the same agent id, else that entry is skipped), successes of checks,
  // and deliveries (an operation still queued or delivered becomes delivered to
  // `session`, delivery_count + 1, version + 1; a final one is left alone). One
  // transaction, group-committed like Apply.
  struct AgentTelemetry {
    std::string store_id;
    std::string agent_id;
    std::string agent_version;
    std::optional<std::int64_t> last_seen_ms;
    std::string availability;
    std::string health;
    std::optional<std::string> release;
    std::optional<std::string> reported_isolation;
    std::vector<std::string> allowed_operations;
    std::string checks_json;
  };
  struct Delivery {
    std::string operation_id;
    std::string session;
    std::int64_t delivered_at_ms = 0;
  };
  struct TelemetryBatch {
    std::vector<AgentTelemetry> agents;
    std::vector<LastSuccess> successes;
    std::vector<Delivery> deliveries;
  };
  virtual Status WriteTelemetry(const TelemetryBatch& batch) = 0;

  // Cheap liveness check of the database, for /readyz.
  virtual Status Ping() = 0;

  // ---- Aggregates for /metrics ---------------------------------------------------------
  // Read at every scrape, so each must stay cheap at 100,000 stores (index-only scans in
  // SQLite). Counts by closed values only: never a store id, a label or a name.
  struct StoreGroupCount {
    std::string state;  // core::StoreState text
    std::string environment;
    std::string isolation_mode;  // core::IsolationMode text
    std::int64_t count = 0;
  };
  // Every store (tombstones included) by (state, environment, isolation mode); groups
  // without stores are absent.
  virtual Result<std::vector<StoreGroupCount>> CountStoresByGroup() = 0;
  struct RunGroupCount {
    std::string kind;   // core::RunKind text
    std::string state;  // core::RunState text
    std::int64_t count = 0;
  };
  // Every pipeline run by (kind, state); groups without runs are absent.
  virtual Result<std::vector<RunGroupCount>> CountRunsByKindState() = 0;
  // Operations still open (queued or delivered), by state text; states without any are absent.
  virtual Result<std::vector<std::pair<std::string, std::int64_t>>> CountOpenOperationsByState() = 0;
  // Outbox entries not sent yet (due or waiting for a retry).
  virtual Result<std::int64_t> CountPendingOutbox() = 0;
  struct AuditHead {
    std::int64_t last_seq = 0;                       // 0 when the trail is empty
    std::optional<std::int64_t> last_checkpoint_ms;  // time of the newest signed checkpoint
  };
  virtual Result<AuditHead> GetAuditHead() = 0;
  // The writer's counters since start (all zero for a back end without a writer queue).
  struct WriterStats {
    std::uint64_t batches = 0;         // transactions committed
    std::uint64_t mutations = 0;       // mutations in them
    std::uint64_t failed_batches = 0;  // transactions that could not begin or commit
    std::uint64_t pending = 0;         // mutations queued, not yet taken by the writer
  };
  virtual WriterStats GetWriterStats() = 0;

 protected:
  const CommitListener& commit_listener() const { return commit_listener_; }
  const EventEncoder& event_encoder() const { return event_encoder_; }

 private:
  CommitListener commit_listener_;
  EventEncoder event_encoder_;
};

}  // namespace storeplane::db
