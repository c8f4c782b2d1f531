// PostgresRepository: open, Apply, the audit chain, leadership, the shared event log and
// notifications (see pg_repository_impl.h for the split by area).
#include <openssl/crypto.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <utility>
#include <variant>

#include "db/audit_chain.h"  // EncodeAuditParams / DecodeAuditParams
#include "db/pg_repository_impl.h"
#include "db/storage_support.h"

namespace storeplane::db {

namespace pg_detail {

// The core of the schema: the audit trail with its head row and checkpoints (append-only,
// enforced by triggers: an UPDATE, DELETE or TRUNCATE fails; an INSERT must follow the last
// record and link to its hash), the leader lease (ADR 0012), the shared event log (its
// inserts NOTIFY the replicas), and meta (the event log's epoch).
const char* const kCoreSchema = R"sql(
CREATE TABLE meta (
  key text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO meta (key, value) VALUES ('event_epoch', substr(md5(random()::text || clock_timestamp()::text), 1, 12));

CREATE FUNCTION storeplane_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;

CREATE TABLE audit_log (
  seq bigint PRIMARY KEY CHECK (seq >= 1),
  time_ms bigint NOT NULL,
  principal text NOT NULL,
  source text NOT NULL,
  action text NOT NULL,
  target text NOT NULL,
  request_id text NOT NULL,
  decision text NOT NULL,
  rule text NOT NULL,
  outcome text NOT NULL,
  params_json text NOT NULL DEFAULT '{}',
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX audit_log_by_principal ON audit_log (principal, seq);
CREATE INDEX audit_log_by_action ON audit_log (action, seq);
CREATE INDEX audit_log_by_target ON audit_log (target, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION storeplane_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION storeplane_append_only();
CREATE FUNCTION audit_log_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last_seq bigint;
  last_hash text;
BEGIN
  SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
  IF NEW.seq <> COALESCE(last_seq, 0) + 1
     OR NEW.prev_hash <> COALESCE(last_hash, '0000000000000000000000000000000000000000000000000000000000000000') THEN
    RAISE EXCEPTION 'audit_log is append-only: record % does not follow the chain', NEW.seq
      USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_log_insert_in_order BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_in_order();

-- The chain head: one row, taken FOR UPDATE by every append, so appends from every replica
-- are serialized and the chain stays linear.
CREATE TABLE audit_head (
  id integer PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL,
  hash text NOT NULL,
  checkpoint_seq bigint NOT NULL,
  checkpoint_ms bigint NOT NULL
);
INSERT INTO audit_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0,
                               (extract(epoch FROM clock_timestamp()) * 1000)::bigint);

CREATE TABLE audit_checkpoints (
  seq bigint PRIMARY KEY,
  hash text NOT NULL,
  time_ms bigint NOT NULL,
  key_id text NOT NULL,
  signature text NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION storeplane_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION storeplane_append_only();
CREATE FUNCTION audit_checkpoints_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq <= COALESCE((SELECT MAX(seq) FROM audit_checkpoints), 0)
     OR NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq AND hash = NEW.hash) THEN
    RAISE EXCEPTION 'audit_checkpoints is append-only' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_checkpoints_insert_in_order BEFORE INSERT ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_in_order();

-- The leader lease (ADR 0012): judged by the database's clock; the token increases on
-- every change of holder and fences leader-only writes.
CREATE TABLE leadership (
  name text PRIMARY KEY,
  holder text NOT NULL DEFAULT '',
  token bigint NOT NULL DEFAULT 0 CHECK (token >= 0),
  expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO leadership (name) VALUES ('leader');

-- The live event stream, shared by every replica. Inserts are serialized by an advisory
-- lock held to commit, so seq order is commit order; each transaction's last seq is
-- NOTIFYed at commit.
CREATE TABLE events (
  seq bigserial PRIMARY KEY,
  type text NOT NULL,
  store_id text NOT NULL DEFAULT '',
  read_action text NOT NULL DEFAULT '',
  environment text NOT NULL DEFAULT '',
  at_ms bigint NOT NULL,
  data_json text NOT NULL
);
CREATE INDEX events_by_at ON events (at_ms);
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('storeplane_events', (SELECT MAX(seq) FROM inserted)::text);
  RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
)sql";

Status VersionMismatch(pg::PgConnection& conn, const char* probe_sql, std::string_view kind, std::string_view id,
                       std::int64_t expected_version, std::string_view what) {
  auto rows = conn.Exec(probe_sql, pg::Params().Add(id), what);
  if (!rows.ok()) return rows.error();
  const std::string name = std::string(kind) + " " + support::Quoted(id);
  if (rows->empty()) return Error::NotFound(name + " not found");
  return Error{ErrorCode::kPreconditionFailed,
               name + " has version " + std::to_string(rows->Int64(0, 0)) + ", not " + std::to_string(expected_version),
               {}};
}

}  // namespace pg_detail

namespace {

using pg_detail::Guarded;
using pg_detail::WithConnection;

// Event inserts from every replica are serialized by this transaction-scoped lock.
constexpr std::int64_t kEventsLockKey = 0x73746f7265ll;  // "store"

constexpr const char* kSelectHeadForUpdate =
    "SELECT seq, hash, checkpoint_seq, checkpoint_ms FROM audit_head WHERE id = 1 FOR UPDATE";
constexpr const char* kInsertAudit =
    "INSERT INTO audit_log (seq, time_ms, principal, source, action, target, request_id, decision, rule, outcome, "
    "params_json, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
constexpr const char* kUpdateHead = "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1";
constexpr const char* kInsertCheckpoint =
    "INSERT INTO audit_checkpoints (seq, hash, time_ms, key_id, signature) VALUES ($1, $2, $3, $4, $5)";
constexpr const char* kUpdateHeadCheckpoint =
    "UPDATE audit_head SET checkpoint_seq = $1, checkpoint_ms = $2 WHERE id = 1";
constexpr const char* kSelectHead = "SELECT seq, checkpoint_seq, checkpoint_ms FROM audit_head WHERE id = 1";
constexpr const char* kSelectLastCheckpointTime = "SELECT time_ms FROM audit_checkpoints ORDER BY seq DESC LIMIT 1";
constexpr const char* kListAuditBase =
    "SELECT seq, time_ms, principal, source, action, target, request_id, decision, rule, outcome, params_json, "
    "prev_hash, hash FROM audit_log WHERE seq > $1";
constexpr const char* kListCheckpoints =
    "SELECT seq, hash, time_ms, key_id, signature FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2";

constexpr const char* kCheckFence =
    "SELECT 1 FROM leadership WHERE name = 'leader' AND holder = $1 AND token = $2 AND expires_at > now() FOR SHARE";
constexpr const char* kAcquireLeadership =
    "UPDATE leadership SET token = token + CASE WHEN holder = $1 AND expires_at > now() THEN 0 ELSE 1 END, "
    "holder = $1, expires_at = now() + $2::bigint * interval '1 millisecond' "
    "WHERE name = 'leader' AND (holder = $1 OR expires_at <= now()) RETURNING token";
constexpr const char* kReleaseLeadership =
    "UPDATE leadership SET expires_at = '-infinity' WHERE name = 'leader' AND holder = $1";

constexpr const char* kSelectEpoch = "SELECT value FROM meta WHERE key = 'event_epoch'";
constexpr const char* kLockEvents = "SELECT pg_advisory_xact_lock($1)";
constexpr const char* kInsertEvent =
    "INSERT INTO events (type, store_id, read_action, environment, at_ms, data_json) VALUES ($1, $2, $3, $4, $5, $6)";
constexpr const char* kReadEvents =
    "SELECT seq, type, store_id, read_action, environment, at_ms, data_json FROM events WHERE seq > $1 "
    "ORDER BY seq LIMIT $2";
constexpr const char* kLastEventSeq = "SELECT COALESCE(MAX(seq), 0) FROM events";

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status CheckFence(pg::PgConnection& conn, const Fence& fence) {
  auto rows = conn.Exec(kCheckFence, pg::Params().Add(fence.holder).Add(fence.token), "check leadership");
  if (!rows.ok()) return rows.error();
  if (rows->empty()) {
    return Error{ErrorCode::kPreconditionFailed,
                 "this replica no longer holds the leader lease (token " + std::to_string(fence.token) +
                     "): leader-only work is refused",
                 {}};
  }
  return Status::Ok();
}

struct EffectRunner {
  pg::PgConnection& conn;
  WriteResult& result;

  Status operator()(const InsertStoreEffect& e) { return pg_detail::InsertStore(conn, e, result); }
  Status operator()(const UpdateStoreEffect& e) { return pg_detail::UpdateStore(conn, e, result); }
  Status operator()(const InsertTokenEffect& e) { return pg_detail::InsertToken(conn, e); }
  Status operator()(const RevokeTokenEffect& e) { return pg_detail::RevokeToken(conn, e); }
  Status operator()(const InsertChangeEffect& e) { return pg_detail::InsertChange(conn, e, result); }
  Status operator()(const UpdateChangeEffect& e) { return pg_detail::UpdateChange(conn, e, result); }
  Status operator()(const InsertEnrollmentTokenEffect& e) { return pg_detail::InsertEnrollmentToken(conn, e); }
  Status operator()(const EnrollAgentEffect& e) { return pg_detail::EnrollAgent(conn, e); }
  Status operator()(const RotateAgentCredentialEffect& e) { return pg_detail::RotateAgentCredential(conn, e); }
  Status operator()(const RevokeAgentEffect& e) { return pg_detail::RevokeAgent(conn, e); }
  Status operator()(const InsertOperationEffect& e) { return pg_detail::InsertOperation(conn, e, result); }
  Status operator()(const UpdateOperationEffect& e) { return pg_detail::UpdateOperation(conn, e, result); }
  Status operator()(const UpsertLastSuccessEffect& e) { return pg_detail::UpsertLastSuccess(conn, e); }
  Status operator()(const InsertRunEffect& e) { return pg_detail::InsertRun(conn, e, result); }
  Status operator()(const UpdateRunEffect& e) { return pg_detail::UpdateRun(conn, e, result); }
  Status operator()(const UpdateOutboxEffect& e) { return pg_detail::UpdateOutbox(conn, e); }
  Status operator()(const InsertCallbackDeliveryEffect& e) { return pg_detail::InsertCallbackDelivery(conn, e); }
  Status operator()(const InsertRolloutEffect& e) { return pg_detail::InsertRollout(conn, e, result); }
  Status operator()(const UpdateRolloutEffect& e) { return pg_detail::UpdateRollout(conn, e, result); }
  Status operator()(const InsertRolloutCommandEffect& e) { return pg_detail::InsertRolloutCommand(conn, e); }
};

}  // namespace

// ---- PostgresRepository ----

PostgresRepository::PostgresRepository(PostgresOptions options, std::unique_ptr<pg::PgPool> pool)
    : options_(std::move(options)), pool_(std::move(pool)) {
  private_pem_ = options_.signing_key_pem;
  if (!private_pem_.empty()) {
    if (auto public_pem = core::PublicKeyFromPrivate(private_pem_); public_pem.ok()) {
      if (auto key_id = core::KeyId(*public_pem); key_id.ok()) key_id_ = std::move(*key_id);
    }
  }
  audit_flusher_ = std::thread([this] { AuditFlusherMain(); });
}

PostgresRepository::~PostgresRepository() {
  {
    std::lock_guard lock(audit_mu_);
    stopping_ = true;
  }
  audit_cv_.notify_all();
  if (audit_flusher_.joinable()) audit_flusher_.join();
  if (!private_pem_.empty()) OPENSSL_cleanse(private_pem_.data(), private_pem_.size());
}

Result<std::vector<std::int64_t>> PostgresRepository::AppendToChain(pg::PgConnection& conn,
                                                                    const std::vector<core::AuditEntry>& entries) {
  auto head = conn.Exec(kSelectHeadForUpdate, "read audit head");
  if (!head.ok()) return head.error();
  if (head->empty()) return Error::Internal("the audit chain head is missing");
  std::int64_t seq = head->Int64(0, 0);
  std::string hash = head->Text(0, 1);
  const std::int64_t checkpoint_seq = head->Int64(0, 2);
  const std::int64_t checkpoint_ms = head->Int64(0, 3);

  std::vector<std::int64_t> seqs;
  seqs.reserve(entries.size());
  for (const core::AuditEntry& entry : entries) {
    core::AuditRecord record = core::Seal(seq + 1, hash, entry);
    pg::Params params;
    params.Add(record.seq)
        .Add(record.entry.time_ms)
        .Add(record.entry.principal)
        .Add(record.entry.source)
        .Add(record.entry.action)
        .Add(record.entry.target)
        .Add(record.entry.request_id)
        .Add(record.entry.decision)
        .Add(record.entry.rule)
        .Add(record.entry.outcome)
        .Add(EncodeAuditParams(record.entry.params))
        .Add(record.prev_hash)
        .Add(record.hash);
    if (auto inserted = conn.Exec(kInsertAudit, params, "write audit record"); !inserted.ok()) {
      Error error = inserted.error();
      if (error.code != ErrorCode::kUnavailable) {
        error = Error::Internal("the audit record could not be written, so nothing was changed");
      }
      return error;
    }
    seqs.push_back(record.seq);
    seq = record.seq;
    hash = std::move(record.hash);
  }
  if (auto updated = conn.Exec(kUpdateHead, pg::Params().Add(seq).Add(hash), "move audit head"); !updated.ok()) {
    return updated.error();
  }

  // A signed checkpoint, when one is due, in the same transaction (under a savepoint: a
  // checkpoint that cannot be written never fails the change it would cover).
  const std::int64_t now = NowMs();
  const bool due = !private_pem_.empty() && seq > checkpoint_seq &&
                   (seq - checkpoint_seq >= options_.checkpoint_every_records ||
                    now - checkpoint_ms >= options_.checkpoint_every_ms);
  if (due && conn.Script("SAVEPOINT audit_checkpoint", "begin audit checkpoint").ok()) {
    core::AuditCheckpoint checkpoint{seq, hash, now, key_id_, {}};
    bool written = false;
    if (auto signature = core::Sign(private_pem_, core::CheckpointMessage(checkpoint)); signature.ok()) {
      checkpoint.signature = std::move(*signature);
      written = conn.Exec(kInsertCheckpoint,
                          pg::Params()
                              .Add(checkpoint.seq)
                              .Add(checkpoint.hash)
                              .Add(checkpoint.time_ms)
                              .Add(checkpoint.key_id)
                              .Add(checkpoint.signature),
                          "write audit checkpoint")
                    .ok() &&
                conn.Exec(kUpdateHeadCheckpoint, pg::Params().Add(seq).Add(now), "write audit checkpoint").ok();
    }
    (void)conn.Script(written ? "RELEASE audit_checkpoint" : "ROLLBACK TO audit_checkpoint; RELEASE audit_checkpoint",
                      "end audit checkpoint");
  }
  return seqs;
}

Status PostgresRepository::InsertEvents(pg::PgConnection& conn, const std::vector<StoredEvent>& events) {
  if (events.empty()) return Status::Ok();
  if (auto locked = conn.Exec(kLockEvents, pg::Params().Add(kEventsLockKey), "append events"); !locked.ok()) {
    return locked.error();
  }
  for (const StoredEvent& event : events) {
    pg::Params params;
    params.Add(event.type)
        .Add(event.store_id)
        .Add(event.read_action)
        .Add(event.environment)
        .Add(event.at_ms)
        .Add(event.data_json);
    if (auto inserted = conn.Exec(kInsertEvent, params, "append event"); !inserted.ok()) return inserted.error();
  }
  return Status::Ok();
}

Result<WriteResult> PostgresRepository::Apply(const WriteBatch& batch) {
  return Guarded([&]() -> Result<WriteResult> {
    SP_RETURN_IF_ERROR(support::CheckBatch(batch));
    WriteResult result;
    // Audit records queued without waiting go first, in this transaction ("written with the
    // next batch"); back to the queue's front when it does not commit.
    std::vector<core::AuditEntry> queued;
    {
      std::lock_guard lock(audit_mu_);
      queued.assign(std::make_move_iterator(audit_queue_.begin()), std::make_move_iterator(audit_queue_.end()));
      audit_queue_.clear();
    }
    std::vector<core::AuditEntry> entries = queued;
    entries.insert(entries.end(), batch.audit.begin(), batch.audit.end());
    pending_ += batch.effects.size();
    // Effects, the fence, the idempotency record, then the audit records and the events
    // (last: they take the chain head and the event lock, held to commit, so the time
    // replicas wait on each other is short). Run again from scratch on a serialization
    // failure or deadlock.
    Status st = pg::InTransaction(
        *pool_,
        [&](pg::PgConnection& conn) -> Status {
          result = WriteResult{};
          EffectRunner runner{conn, result};
          for (const Effect& effect : batch.effects) SP_RETURN_IF_ERROR(std::visit(runner, effect));
          if (batch.fence) SP_RETURN_IF_ERROR(CheckFence(conn, *batch.fence));
          if (batch.idempotency) SP_RETURN_IF_ERROR(pg_detail::InsertIdempotency(conn, *batch.idempotency));
          auto seqs = AppendToChain(conn, entries);
          if (!seqs.ok()) return seqs.error();
          result.audit_seqs.assign(seqs->begin() + static_cast<std::ptrdiff_t>(queued.size()), seqs->end());
          if (const auto& encoder = event_encoder()) SP_RETURN_IF_ERROR(InsertEvents(conn, encoder(batch, result)));
          return Status::Ok();
        },
        "write");
    pending_ -= batch.effects.size();
    if (!st.ok() && !queued.empty()) {
      std::lock_guard lock(audit_mu_);
      audit_queue_.insert(audit_queue_.begin(), std::make_move_iterator(queued.begin()),
                          std::make_move_iterator(queued.end()));
    } else if (!queued.empty()) {
      pending_ -= queued.size();
      mutations_ += queued.size();
    }
    if (!st.ok()) {
      if (st.error().code == ErrorCode::kUnavailable) ++failed_batches_;
      return st.error();
    }
    ++batches_;
    mutations_ += std::max<std::size_t>(1, batch.effects.size());
    if (const auto& listener = commit_listener()) listener(batch, result);
    return result;
  });
}

Status PostgresRepository::AppendAudit(const core::AuditEntry& entry, bool wait) {
  return Guarded([&]() -> Status {
    if (!wait) {
      {
        std::lock_guard lock(audit_mu_);
        if (stopping_) return Error{ErrorCode::kUnavailable, "the repository is closing", {}};
        audit_queue_.push_back(entry);
      }
      ++pending_;
      audit_cv_.notify_one();
      return Status::Ok();
    }
    const std::vector<core::AuditEntry> entries{entry};
    Status st = pg::InTransaction(
        *pool_,
        [&](pg::PgConnection& conn) -> Status {
          auto seqs = AppendToChain(conn, entries);
          return seqs.ok() ? Status::Ok() : Status(seqs.error());
        },
        "write audit record");
    if (st.ok()) {
      ++batches_;
      ++mutations_;
    } else {
      ++failed_batches_;
    }
    return st;
  });
}

// Writes queued audit records in batches, and a checkpoint when one is due by time (the
// head moved since the last one), while idle; the last queued records before it stops.
void PostgresRepository::AuditFlusherMain() {
  auto last_checkpoint_check = std::chrono::steady_clock::now();
  for (;;) {
    std::vector<core::AuditEntry> entries;
    bool stopping = false;
    {
      std::unique_lock lock(audit_mu_);
      audit_cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stopping_ || !audit_queue_.empty(); });
      stopping = stopping_;
      while (!audit_queue_.empty() && entries.size() < 512) {
        entries.push_back(std::move(audit_queue_.front()));
        audit_queue_.pop_front();
      }
    }
    if (!entries.empty()) {
      Status st = Guarded([&]() -> Status {
        return pg::InTransaction(
            *pool_,
            [&](pg::PgConnection& conn) -> Status {
              auto seqs = AppendToChain(conn, entries);
              return seqs.ok() ? Status::Ok() : Status(seqs.error());
            },
            "write audit records");
      });
      pending_ -= entries.size();
      if (st.ok()) {
        ++batches_;
        mutations_ += entries.size();
      } else {
        ++failed_batches_;
      }
      continue;  // drain before checking time or stopping
    }
    const auto now = std::chrono::steady_clock::now();
    if (!private_pem_.empty() && (stopping || now - last_checkpoint_check >= std::chrono::seconds(1))) {
      last_checkpoint_check = now;
      // A time-based (or, at close, final) checkpoint over the head, if it moved since the last.
      // Looked at without a lock first: an idle replica writes nothing.
      const auto due_now = Guarded([&]() -> Result<bool> {
        return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<bool> {
          auto head = conn.Exec(kSelectHead, "read audit head");
          if (!head.ok()) return head.error();
          if (head->empty() || head->Int64(0, 0) <= head->Int64(0, 1)) return false;
          return stopping || NowMs() - head->Int64(0, 2) >= options_.checkpoint_every_ms;
        });
      });
      if (due_now.ok() && *due_now)
        (void)Guarded([&]() -> Status {
          return pg::InTransaction(
              *pool_,
              [&](pg::PgConnection& conn) -> Status {
                auto head = conn.Exec(kSelectHeadForUpdate, "read audit head");
                if (!head.ok()) return head.error();
                if (head->empty()) return Status::Ok();
                const std::int64_t seq = head->Int64(0, 0);
                const std::int64_t checkpoint_seq = head->Int64(0, 2);
                const std::int64_t checkpoint_ms = head->Int64(0, 3);
                const std::int64_t now_ms = NowMs();
                if (seq <= checkpoint_seq) return Status::Ok();
                if (!stopping && now_ms - checkpoint_ms < options_.checkpoint_every_ms) return Status::Ok();
                core::AuditCheckpoint checkpoint{seq, head->Text(0, 1), now_ms, key_id_, {}};
                auto signature = core::Sign(private_pem_, core::CheckpointMessage(checkpoint));
                if (!signature.ok()) return signature.error();
                checkpoint.signature = std::move(*signature);
                auto inserted = conn.Exec(kInsertCheckpoint,
                                          pg::Params()
                                              .Add(checkpoint.seq)
                                              .Add(checkpoint.hash)
                                              .Add(checkpoint.time_ms)
                                              .Add(checkpoint.key_id)
                                              .Add(checkpoint.signature),
                                          "write audit checkpoint");
                if (!inserted.ok()) return inserted.error();
                auto moved =
                    conn.Exec(kUpdateHeadCheckpoint, pg::Params().Add(seq).Add(now_ms), "write audit checkpoint");
                return moved.ok() ? Status::Ok() : Status(moved.error());
              },
              "write audit checkpoint");
        });
    }
    if (stopping) return;
  }
}

Result<AuditPage> PostgresRepository::ListAudit(const AuditQuery& query) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<AuditPage> {
    SP_RETURN_IF_ERROR(support::CheckLimit(query.limit));
    std::string sql = kListAuditBase;
    pg::Params params;
    params.Add(query.after_seq);
    int n = 1;
    if (query.principal) {
      sql += " AND principal = $" + std::to_string(++n);
      params.Add(*query.principal);
    }
    if (query.action) {
      sql += " AND action = $" + std::to_string(++n);
      params.Add(*query.action);
    }
    if (query.target) {
      sql += " AND target = $" + std::to_string(++n);
      params.Add(*query.target);
    }
    sql += " ORDER BY seq LIMIT $" + std::to_string(++n);
    params.Add(static_cast<std::int64_t>(query.limit) + 1);
    auto rows = conn.Exec(sql.c_str(), params, "list audit records");
    if (!rows.ok()) return rows.error();
    AuditPage page;
    for (int r = 0; r < rows->size(); ++r) {
      if (page.items.size() == static_cast<std::size_t>(query.limit)) {
        page.next_after_seq = page.items.back().seq;
        break;
      }
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
      auto params_map = DecodeAuditParams(rows->Text(r, 10));
      if (!params_map) return support::Unreadable("audit record", std::to_string(record.seq));
      record.entry.params = std::move(*params_map);
      record.prev_hash = rows->Text(r, 11);
      record.hash = rows->Text(r, 12);
      page.items.push_back(std::move(record));
    }
    return page;
  });
}

Result<std::vector<core::AuditCheckpoint>> PostgresRepository::ListCheckpoints(std::int64_t after_seq, int limit) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<core::AuditCheckpoint>> {
    SP_RETURN_IF_ERROR(support::CheckLimit(limit));
    auto rows = conn.Exec(kListCheckpoints, pg::Params().Add(after_seq).Add(limit), "list audit checkpoints");
    if (!rows.ok()) return rows.error();
    std::vector<core::AuditCheckpoint> out;
    for (int r = 0; r < rows->size(); ++r) {
      out.push_back(core::AuditCheckpoint{rows->Int64(r, 0), rows->Text(r, 1), rows->Int64(r, 2), rows->Text(r, 3),
                                          rows->Text(r, 4)});
    }
    return out;
  });
}

Result<Repository::AuditHead> PostgresRepository::GetAuditHead() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<AuditHead> {
    auto head = conn.Exec(kSelectHead, "read audit head");
    if (!head.ok()) return head.error();
    AuditHead out;
    if (!head->empty()) out.last_seq = head->Int64(0, 0);
    auto last = conn.Exec(kSelectLastCheckpointTime, "read audit checkpoint");
    if (!last.ok()) return last.error();
    if (!last->empty()) out.last_checkpoint_ms = last->Int64(0, 0);
    return out;
  });
}

// ---- Leadership ----

Result<std::optional<std::int64_t>> PostgresRepository::AcquireLeadership(std::string_view holder,
                                                                          std::int64_t lease_ms) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::optional<std::int64_t>> {
    if (holder.empty()) return Error::Internal("a leadership holder needs a name");
    auto rows = conn.Exec(kAcquireLeadership, pg::Params().Add(holder).Add(lease_ms), "acquire leadership");
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(rows->Int64(0, 0));
  });
}

Status PostgresRepository::ReleaseLeadership(std::string_view holder) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Status {
    auto rows = conn.Exec(kReleaseLeadership, pg::Params().Add(holder), "release leadership");
    return rows.ok() ? Status::Ok() : Status(rows.error());
  });
}

// ---- The shared event log and notifications ----

std::string PostgresRepository::EventEpoch() {
  std::lock_guard lock(listen_mu_);
  if (epoch_.empty()) {
    auto read = WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::string> {
      auto rows = conn.Exec(kSelectEpoch, "read event epoch");
      if (!rows.ok()) return rows.error();
      if (rows->empty()) return Error::Internal("the event epoch is missing");
      return rows->Text(0, 0);
    });
    if (read.ok()) epoch_ = *read;
  }
  return epoch_;
}

Status PostgresRepository::AppendEvents(const std::vector<StoredEvent>& events) {
  if (events.empty()) return Status::Ok();
  return Guarded([&]() -> Status {
    return pg::InTransaction(
        *pool_, [&](pg::PgConnection& conn) { return InsertEvents(conn, events); }, "append events");
  });
}

Result<std::vector<StoredEvent>> PostgresRepository::ReadEvents(std::int64_t after_seq, int limit) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::vector<StoredEvent>> {
    SP_RETURN_IF_ERROR(support::CheckLimit(limit));
    auto rows = conn.Exec(kReadEvents, pg::Params().Add(after_seq).Add(limit), "read events");
    if (!rows.ok()) return rows.error();
    std::vector<StoredEvent> out;
    out.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) {
      out.push_back(StoredEvent{rows->Int64(r, 0), rows->Text(r, 1), rows->Text(r, 2), rows->Text(r, 3),
                                rows->Text(r, 4), rows->Int64(r, 5), rows->Text(r, 6)});
    }
    return out;
  });
}

Result<std::int64_t> PostgresRepository::LastEventSeq() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::int64_t> {
    auto rows = conn.Exec(kLastEventSeq, "read events");
    if (!rows.ok()) return rows.error();
    return rows->Int64(0, 0);
  });
}

Result<std::int64_t> PostgresRepository::PruneEvents(std::int64_t before_ms) {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Result<std::int64_t> {
    auto rows = conn.Exec("DELETE FROM events WHERE at_ms < $1", pg::Params().Add(before_ms), "prune events");
    if (!rows.ok()) return rows.error();
    return rows->affected();
  });
}

Result<std::vector<Notification>> PostgresRepository::WaitForNotifications(int timeout_ms) {
  std::unique_lock lock(listen_mu_);
  if (!listener_ || !listener_->healthy()) {
    listener_.reset();
    auto opened = pg::PgConnection::Open(options_.conninfo);
    if (!opened.ok()) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(timeout_ms, 1000)));
      return opened.error();
    }
    if (auto s = opened->Script("LISTEN storeplane_events; LISTEN storeplane_operations", "listen"); !s.ok()) {
      return s.error();
    }
    listener_ = std::make_unique<pg::PgConnection>(std::move(*opened));
    // Whatever happened while not listening is for the caller to catch up on: say so.
    return std::vector<Notification>{Notification{Notification::Kind::kEvents, ""}};
  }
  PGconn* conn = listener_->get();
  std::vector<Notification> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(conn)) {
      const std::string channel = n->relname ? n->relname : "";
      const std::string payload = n->extra ? n->extra : "";
      PQfreemem(n);
      out.push_back(Notification{
          channel == "storeplane_operations" ? Notification::Kind::kOperationQueued : Notification::Kind::kEvents,
          payload});
    }
  };
  if (PQconsumeInput(conn) == 0) {
    listener_.reset();
    return Error{ErrorCode::kUnavailable, "the notification connection was lost", {}};
  }
  drain();
  if (!out.empty()) return out;
  pollfd pfd{PQsocket(conn), POLLIN, 0};
  const int ready = ::poll(&pfd, 1, timeout_ms);
  if (ready > 0) {
    if (PQconsumeInput(conn) == 0) {
      listener_.reset();
      return Error{ErrorCode::kUnavailable, "the notification connection was lost", {}};
    }
    drain();
  }
  return out;
}

Status PostgresRepository::Ping() {
  return WithConnection(*pool_, [&](pg::PgConnection& conn) -> Status {
    auto rows = conn.Exec("SELECT 1", "ping the database");
    return rows.ok() ? Status::Ok() : Status(rows.error());
  });
}

Repository::WriterStats PostgresRepository::GetWriterStats() {
  WriterStats stats;
  stats.batches = batches_.load();
  stats.mutations = mutations_.load();
  stats.failed_batches = failed_batches_.load();
  stats.pending = pending_.load();
  return stats;
}

// ---- Open ----

Result<std::unique_ptr<Repository>> OpenPostgresRepository(const PostgresOptions& options) {
  return Guarded([&]() -> Result<std::unique_ptr<Repository>> {
    if (options.conninfo.empty()) return Error::Invalid("the PostgreSQL connection string is empty", "conninfo");
    if (options.pool_size < 1) return Error::Invalid("pool_size must be at least 1", "pool_size");
    if (!options.signing_key_pem.empty()) {
      if (options.checkpoint_every_records < 1 || options.checkpoint_every_ms < 1) {
        return Error::Invalid("audit checkpoint intervals must be positive", "checkpoint_every_records");
      }
      auto public_pem = core::PublicKeyFromPrivate(options.signing_key_pem);
      if (!public_pem.ok()) {
        return Error::Invalid("the audit signing key is not an unencrypted Ed25519 private key (PKCS#8 PEM)",
                              "signing_key_pem");
      }
    }
    if (options.migrate) {
      auto version = MigratePostgres(options.conninfo);
      if (!version.ok()) return version.error();
    } else {
      auto version = PostgresSchemaVersion(options.conninfo);
      if (!version.ok()) return version.error();
      if (*version != PostgresTargetSchemaVersion()) {
        return Error{ErrorCode::kUnavailable,
                     "the PostgreSQL schema is at version " + std::to_string(*version) + ", this storeplaned needs " +
                         std::to_string(PostgresTargetSchemaVersion()) + ": run `storeplaned migrate`",
                     {}};
      }
    }
    auto pool = std::make_unique<pg::PgPool>(options.conninfo, options.pool_size);
    {
      auto first = pool->Acquire();  // fail now rather than at the first request
      if (!first.ok()) return first.error();
    }
    return std::unique_ptr<Repository>(std::make_unique<PostgresRepository>(options, std::move(pool)));
  });
}

}  // namespace storeplane::db
