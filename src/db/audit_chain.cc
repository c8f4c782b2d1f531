#include "db/audit_chain.h"

#include <openssl/crypto.h>

#include <exception>
#include <utility>

#include <boost/json.hpp>

namespace storeplane::db {

namespace {

constexpr const char* kSelectHead = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
constexpr const char* kSelectLastCheckpoint = "SELECT seq, time_ms FROM audit_checkpoints ORDER BY seq DESC LIMIT 1";
constexpr const char* kInsertAudit =
    "INSERT INTO audit_log (seq, time_ms, principal, source, action, target, request_id, decision, rule, "
    "outcome, params_json, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
constexpr const char* kInsertCheckpoint =
    "INSERT INTO audit_checkpoints (seq, hash, time_ms, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)";

constexpr const char* kCheckpointSavepoint = "SAVEPOINT audit_checkpoint";
constexpr const char* kCheckpointRelease = "RELEASE audit_checkpoint";
constexpr const char* kCheckpointRollback = "ROLLBACK TO audit_checkpoint";

}  // namespace

std::string EncodeAuditParams(const std::map<std::string, std::string>& params) {
  boost::json::object object;
  for (const auto& [key, value] : params) object[key] = value;
  return boost::json::serialize(object);
}

std::optional<std::map<std::string, std::string>> DecodeAuditParams(const std::string& json) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(json, ec);
  if (ec || !value.is_object()) return std::nullopt;
  std::map<std::string, std::string> params;
  for (const auto& [key, v] : value.get_object()) {
    if (!v.is_string()) return std::nullopt;
    params.emplace(std::string(key), std::string(v.get_string()));
  }
  return params;
}

AuditChain::AuditChain(AuditChainOptions options) : options_(std::move(options)) {
  private_pem_ = std::move(options_.signing_key_pem);
  options_.signing_key_pem.clear();
}

AuditChain::~AuditChain() {
  if (!private_pem_.empty()) OPENSSL_cleanse(private_pem_.data(), private_pem_.size());
}

Result<std::shared_ptr<AuditChain>> AuditChain::Load(Connection& conn, AuditChainOptions options) {
  if (!options.now_ms) return Error::Internal("the audit chain needs a clock");
  auto chain = std::make_shared<AuditChain>(std::move(options));
  if (chain->signs()) {
    if (chain->options_.checkpoint_every_records < 1 || chain->options_.checkpoint_every_ms < 1) {
      return Error::Invalid("audit checkpoint intervals must be positive", "checkpoint_every_records");
    }
    auto public_pem = core::PublicKeyFromPrivate(chain->private_pem_);
    if (!public_pem.ok()) {
      return Error::Invalid("the audit signing key is not an unencrypted Ed25519 private key (PKCS#8 PEM)",
                            "signing_key_pem");
    }
    auto key_id = core::KeyId(*public_pem);
    if (!key_id.ok()) return key_id.error();
    chain->key_id_ = std::move(*key_id);
  }

  auto head = conn.Prepare(kSelectHead, "read audit head");
  if (!head.ok()) return head.error();
  auto row = head->Step("read audit head");
  if (!row.ok()) return row.error();
  if (*row) {
    chain->head_.seq = head->ColumnInt64(0);
    chain->head_.hash = head->ColumnText(1);
  }

  auto last = conn.Prepare(kSelectLastCheckpoint, "read audit checkpoint");
  if (!last.ok()) return last.error();
  row = last->Step("read audit checkpoint");
  if (!row.ok()) return row.error();
  if (*row) {
    chain->checkpoint_.seq = last->ColumnInt64(0);
    chain->checkpoint_.time_ms = last->ColumnInt64(1);
  } else {
    chain->checkpoint_.time_ms = chain->options_.now_ms();  // the interval counts from the first open
  }
  chain->batch_head_ = chain->head_;
  chain->batch_checkpoint_ = chain->checkpoint_;
  return chain;
}

Result<std::vector<std::int64_t>> AuditChain::Append(Connection& conn, const std::vector<core::AuditEntry>& entries) {
  Head next = head_;
  std::vector<std::int64_t> seqs;
  seqs.reserve(entries.size());
  for (const core::AuditEntry& entry : entries) {
    core::AuditRecord record = core::Seal(next.seq + 1, next.hash, entry);
    auto insert = conn.Prepare(kInsertAudit, "write audit record");
    if (!insert.ok()) return insert.error();
    insert->Bind(1, record.seq)
        .Bind(2, record.entry.time_ms)
        .Bind(3, std::string_view(record.entry.principal))
        .Bind(4, std::string_view(record.entry.source))
        .Bind(5, std::string_view(record.entry.action))
        .Bind(6, std::string_view(record.entry.target))
        .Bind(7, std::string_view(record.entry.request_id))
        .Bind(8, std::string_view(record.entry.decision))
        .Bind(9, std::string_view(record.entry.rule))
        .Bind(10, std::string_view(record.entry.outcome))
        .Bind(11, std::string_view(EncodeAuditParams(record.entry.params)))
        .Bind(12, std::string_view(record.prev_hash))
        .Bind(13, std::string_view(record.hash));
    if (auto st = insert->Run("write audit record"); !st.ok()) {
      // A constraint here means the stored trail and the head disagree (another writer on
      // the same file, or a hand edit): never a client's mistake.
      Error error = st.error();
      if (error.code != ErrorCode::kUnavailable)
        error = Error::Internal("the audit record could not be written, so nothing was changed");
      return error;
    }
    seqs.push_back(record.seq);
    next.seq = record.seq;
    next.hash = std::move(record.hash);
  }
  head_ = std::move(next);
  return seqs;
}

void AuditChain::OnBatchBegin() {
  batch_head_ = head_;
  batch_checkpoint_ = checkpoint_;
}

void AuditChain::OnBatchRolledBack() {
  head_ = batch_head_;
  checkpoint_ = batch_checkpoint_;
}

bool AuditChain::CheckpointDue(std::int64_t now_ms) const {
  if (!signs() || head_.seq <= checkpoint_.seq) return false;
  return head_.seq - checkpoint_.seq >= options_.checkpoint_every_records ||
         now_ms - checkpoint_.time_ms >= options_.checkpoint_every_ms;
}

Status AuditChain::InsertCheckpoint(Connection& conn, std::int64_t now_ms) {
  core::AuditCheckpoint checkpoint;
  checkpoint.seq = head_.seq;
  checkpoint.hash = head_.hash;
  checkpoint.time_ms = now_ms;
  checkpoint.key_id = key_id_;
  auto signature = core::Sign(private_pem_, core::CheckpointMessage(checkpoint));
  if (!signature.ok()) return signature.error();
  checkpoint.signature = std::move(*signature);
  auto insert = conn.Prepare(kInsertCheckpoint, "write audit checkpoint");
  if (!insert.ok()) return insert.error();
  insert->Bind(1, checkpoint.seq)
      .Bind(2, std::string_view(checkpoint.hash))
      .Bind(3, checkpoint.time_ms)
      .Bind(4, std::string_view(checkpoint.key_id))
      .Bind(5, std::string_view(checkpoint.signature));
  if (auto st = insert->Run("write audit checkpoint"); !st.ok()) return st;
  checkpoint_ = CheckpointState{checkpoint.seq, checkpoint.time_ms};
  return Status::Ok();
}

// A checkpoint that cannot be written is skipped, never fatal: the records it would cover
// are committed either way, and the next batch (or close) tries again.
void AuditChain::BeforeCommit(Connection& conn) {
  try {
    const std::int64_t now = options_.now_ms();
    if (!CheckpointDue(now)) return;
    if (!conn.Exec(kCheckpointSavepoint, "begin audit checkpoint").ok()) return;
    const CheckpointState before = checkpoint_;
    if (InsertCheckpoint(conn, now).ok()) {
      if (conn.Exec(kCheckpointRelease, "end audit checkpoint").ok()) return;
    }
    checkpoint_ = before;
    if (!conn.autocommit()) {
      (void)conn.Exec(kCheckpointRollback, "roll back audit checkpoint");
      (void)conn.Exec(kCheckpointRelease, "end audit checkpoint");
    }
  } catch (const std::exception&) {  // nothing escapes into the writer loop
  }
}

void AuditChain::CheckpointInOwnTransaction(Connection& conn) {
  try {
    const std::int64_t now = options_.now_ms();
    const CheckpointState before = checkpoint_;
    if (!conn.Exec(kSqlBeginImmediate, "begin audit checkpoint").ok()) return;
    if (InsertCheckpoint(conn, now).ok() && conn.Exec(kSqlCommit, "commit audit checkpoint").ok()) return;
    checkpoint_ = before;
    if (!conn.autocommit()) (void)conn.Exec(kSqlRollback, "roll back audit checkpoint");
  } catch (const std::exception&) {
  }
}

void AuditChain::OnIdle(Connection& conn) {
  if (CheckpointDue(options_.now_ms())) CheckpointInOwnTransaction(conn);
}

void AuditChain::OnClose(Connection& conn) {
  if (signs() && head_.seq > checkpoint_.seq) CheckpointInOwnTransaction(conn);
}

}  // namespace storeplane::db
