// The audit trail in storage: same-transaction rule, chain head ownership by the writer,
// append-only enforcement by the database, signed checkpoints, and group commit.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "core/audit.h"
#include "db/audit_chain.h"
#include "db/migrations.h"
#include "db_test_util.h"

namespace storeplane::db {
namespace {

using testing::BackendTest;
using testing::InsertStoreAudited;
using testing::MakeStore;
using testing::TestAudit;

// Runs `sql` on the file directly; returns the SQLite result code and fills `message`.
int ExecRawWithMessage(const std::string& path, const std::string& sql, std::string* message) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(path.c_str(), &db);
  char* error = nullptr;
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  if (message != nullptr) *message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  return rc;
}

const core::SigningKey& TestKey() {
  static const core::SigningKey key = [] {
    auto generated = core::GenerateSigningKey();
    EXPECT_TRUE(generated.ok());
    return generated.ok() ? *generated : core::SigningKey{};
  }();
  return key;
}

class AuditStorageTest : public BackendTest {
 protected:
  // Every record, following the cursor.
  std::vector<core::AuditRecord> AllRecords(AuditQuery query = {}) {
    std::vector<core::AuditRecord> all;
    query.limit = 1000;
    for (;;) {
      auto page = repo_->ListAudit(query);
      EXPECT_TRUE(page.ok()) << (page.ok() ? "" : page.error().message);
      if (!page.ok()) break;
      all.insert(all.end(), page->items.begin(), page->items.end());
      if (page->next_after_seq == 0) break;
      query.after_seq = page->next_after_seq;
    }
    return all;
  }

  std::vector<core::AuditCheckpoint> AllCheckpoints() {
    auto checkpoints = repo_->ListCheckpoints(0, 1000);
    EXPECT_TRUE(checkpoints.ok());
    return checkpoints.ok() ? *checkpoints : std::vector<core::AuditCheckpoint>{};
  }

  core::ChainReport Verify() { return core::VerifyChain(AllRecords(), AllCheckpoints(), TestKey().public_pem); }

  void Append(int n) {
    Status st = repo_->AppendAudit(TestAudit("store.read", "store/shop", n), true);
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  void UseSigningKey(int every_records, int every_ms) {
    options_.signing_key_pem = pg_options_.signing_key_pem = TestKey().private_pem;
    options_.checkpoint_every_records = pg_options_.checkpoint_every_records = every_records;
    options_.checkpoint_every_ms = pg_options_.checkpoint_every_ms = every_ms;
    Reopen();
  }

  long long AuditRows() { return QueryInt("SELECT COUNT(*) FROM audit_log"); }
};

std::vector<std::int64_t> Seqs(const std::vector<core::AuditRecord>& records) {
  std::vector<std::int64_t> seqs;
  for (const auto& record : records) seqs.push_back(record.seq);
  return seqs;
}

// ---- the same-transaction rule ----

TEST_P(AuditStorageTest, ApplyWritesTheChangeAndItsAuditRecordsWithContiguousSeqs) {
  WriteBatch batch;
  batch.effects.push_back(InsertStoreEffect{MakeStore("shop")});
  batch.audit.push_back(TestAudit("change.approve", "change/chg_1", 1));
  core::AuditEntry second = TestAudit("store.register", "store/shop", 2);
  second.params = {{"environment", "production"}, {"name", "Shop"}};
  batch.audit.push_back(second);
  auto applied = repo_->Apply(batch);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_EQ(applied->audit_seqs, (std::vector<std::int64_t>{1, 2}));
  ASSERT_EQ(applied->stores.size(), 1u);
  EXPECT_EQ(applied->stores[0].id, "shop");

  Append(3);
  auto records = AllRecords();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(Seqs(records), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(records[0].prev_hash, core::kGenesisHash);
  EXPECT_EQ(records[1].entry.params, second.params);
  EXPECT_EQ(records[1].entry.action, "store.register");
  EXPECT_EQ(records[1].entry.principal, "alice");
  EXPECT_EQ(records[1].entry.source, "127.0.0.1");
  EXPECT_EQ(records[1].entry.request_id, "req-2");
  EXPECT_EQ(records[1].entry.decision, "allow");
  EXPECT_EQ(records[1].entry.rule, "test");
  EXPECT_EQ(records[1].entry.outcome, "ok");
  EXPECT_EQ(records[1].entry.time_ms, second.time_ms);
  core::ChainReport report = Verify();
  EXPECT_TRUE(report.ok) << report.problem;
}

TEST_P(AuditStorageTest, FailingEffectRollsBackEverythingAndTheChainContinuesWithoutAGap) {
  ASSERT_TRUE(InsertStoreAudited(*repo_, MakeStore("taken")).ok());  // seq 1

  WriteBatch batch;
  batch.effects.push_back(InsertStoreEffect{MakeStore("fresh")});
  batch.effects.push_back(InsertStoreEffect{MakeStore("taken")});  // fails
  batch.audit.push_back(TestAudit("store.register", "store/fresh", 2));
  batch.audit.push_back(TestAudit("store.register", "store/taken", 3));
  IdempotencyRecord idempotency{"alice", "key-1", "hash", 201, "{}", "", 1};
  batch.idempotency = idempotency;
  auto applied = repo_->Apply(batch);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code, ErrorCode::kAlreadyExists);

  EXPECT_EQ(repo_->GetStore("fresh").error().code, ErrorCode::kNotFound);
  auto remembered = repo_->FindIdempotency("alice", "key-1");
  ASSERT_TRUE(remembered.ok());
  EXPECT_FALSE(remembered->has_value());
  EXPECT_EQ(AuditRows(), 1);

  // The head did not move: the next record is seq 2 and links to seq 1.
  auto next = InsertStoreAudited(*repo_, MakeStore("next"));
  ASSERT_TRUE(next.ok());
  auto records = AllRecords();
  EXPECT_EQ(Seqs(records), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(records[1].prev_hash, records[0].hash);
  EXPECT_EQ(records[1].entry.target, "store/next");
  EXPECT_TRUE(Verify().ok);
}

TEST_P(AuditStorageTest, BatchWithoutAuditIsRefused) {
  WriteBatch batch;
  batch.effects.push_back(InsertStoreEffect{MakeStore("unaudited")});
  auto applied = repo_->Apply(batch);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code, ErrorCode::kInternal);
  EXPECT_NE(applied.error().message.find("no audit, no change"), std::string::npos);
  EXPECT_EQ(repo_->GetStore("unaudited").error().code, ErrorCode::kNotFound);

  batch.effects.clear();
  batch.idempotency = IdempotencyRecord{"alice", "key", "hash", 201, "{}", "", 1};
  EXPECT_FALSE(repo_->Apply(batch).ok());
  EXPECT_FALSE(repo_->Apply(WriteBatch{}).ok());
  EXPECT_EQ(AuditRows(), 0);
}

TEST_P(AuditStorageTest, AuditWriteFailureRefusesTheActionAndChangesNothing) {
  ASSERT_TRUE(InsertStoreAudited(*repo_, MakeStore("first")).ok());
  // Someone appends a record behind the writer's back: the writer's head is now stale, so
  // its next audit insert is refused by the database, and with it the whole change.
  ASSERT_TRUE(
      ExecSql("INSERT INTO audit_log (seq, time_ms, principal, source, action, target, request_id, "
              "decision, rule, outcome, params_json, prev_hash, hash) "
              "SELECT 2, 0, 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', '{}', hash, hash FROM audit_log"));
  auto refused = InsertStoreAudited(*repo_, MakeStore("second"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInternal);
  EXPECT_EQ(repo_->GetStore("second").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(AuditRows(), 2);
}

// ---- append-only, enforced by the database ----

TEST_P(AuditStorageTest, DatabaseRefusesUpdateDeleteAndOverwriteOfTheTrail) {
  UseSigningKey(2, 3'600'000);
  for (int i = 1; i <= 3; ++i) Append(i);
  ASSERT_GE(AllCheckpoints().size(), 1u);
  Close();

  if (postgres()) {
    // The same refusals in PostgreSQL's dialect (an upsert stands for INSERT OR REPLACE),
    // plus TRUNCATE; every one raised by the append-only triggers (restrict_violation).
    auto conn = pg::PgConnection::Open(pg_options_.conninfo);
    ASSERT_TRUE(conn.ok()) << conn.error().message;
    for (const char* sql : {
             "UPDATE audit_log SET outcome = 'denied' WHERE seq = 2",
             "DELETE FROM audit_log WHERE seq = 3",
             "DELETE FROM audit_log",
             "TRUNCATE audit_log",
             "INSERT INTO audit_log SELECT * FROM audit_log WHERE seq = 1 "
             "ON CONFLICT (seq) DO UPDATE SET outcome = 'denied'",
             "INSERT INTO audit_log (seq, time_ms, principal, source, action, target, request_id, decision, rule, "
             "outcome, params_json, prev_hash, hash) VALUES (10, 0, '', '', '', '', '', '', '', '', '{}', '', '')",
             // The next seq, but not linked to the last record's hash.
             "INSERT INTO audit_log (seq, time_ms, principal, source, action, target, request_id, decision, rule, "
             "outcome, params_json, prev_hash, hash) VALUES (4, 0, '', '', '', '', '', '', '', '', '{}', 'x', 'x')",
             "UPDATE audit_checkpoints SET hash = 'x'",
             "DELETE FROM audit_checkpoints",
             "TRUNCATE audit_checkpoints",
             "INSERT INTO audit_checkpoints SELECT * FROM audit_checkpoints ON CONFLICT (seq) DO UPDATE SET hash = 'x'",
         }) {
      EXPECT_FALSE(conn->Script(sql, "tamper").ok()) << sql;
      EXPECT_EQ(conn->last_failure().sqlstate, "23001") << sql << ": not refused as append-only";
    }
  } else {
    for (const char* sql : {
             "UPDATE audit_log SET outcome = 'denied' WHERE seq = 2",
             "DELETE FROM audit_log WHERE seq = 3",
             "DELETE FROM audit_log",
             "INSERT OR REPLACE INTO audit_log SELECT * FROM audit_log WHERE seq = 1",
             "INSERT INTO audit_log (seq, time_ms, principal, source, action, target, request_id, decision, rule, "
             "outcome, params_json, prev_hash, hash) VALUES (10, 0, '', '', '', '', '', '', '', '', '{}', '', '')",
             "UPDATE audit_checkpoints SET hash = 'x'",
             "DELETE FROM audit_checkpoints",
             "INSERT OR REPLACE INTO audit_checkpoints SELECT * FROM audit_checkpoints",
         }) {
      std::string message;
      EXPECT_EQ(ExecRawWithMessage(options_.path, sql, &message), SQLITE_CONSTRAINT) << sql;
      EXPECT_NE(message.find("is append-only"), std::string::npos) << sql << ": " << message;
    }
  }
  EXPECT_EQ(AuditRows(), 3);
  Reopen();
  core::ChainReport report = Verify();
  EXPECT_TRUE(report.ok) << report.problem;
}

// ---- the chain head across restarts ----

TEST_P(AuditStorageTest, ChainContinuesAcrossCloseAndReopen) {
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(InsertStoreAudited(*repo_, MakeStore("s" + std::to_string(i))).ok());
  Reopen();
  Append(4);
  Reopen();
  ASSERT_TRUE(InsertStoreAudited(*repo_, MakeStore("s5")).ok());
  auto records = AllRecords();
  EXPECT_EQ(Seqs(records), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  core::ChainReport report = Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 5);
}

TEST_P(AuditStorageTest, HeadIsRestoredWhenTheBatchDoesNotCommit) {
  if (postgres()) {
    GTEST_SKIP() << "drives SQLite's WriteQueue and AuditChain directly; on PostgreSQL the head is a row moved "
                    "inside the batch's own transaction";
  }
  Close();
  // A writer of our own over the migrated file, with a table whose deferred foreign key
  // makes COMMIT fail.
  auto conn = Connection::Open(options_.path, SQLITE_OPEN_READWRITE, 5000);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(conn->Exec("PRAGMA foreign_keys=ON;"
                         "CREATE TABLE parents (id TEXT PRIMARY KEY NOT NULL);"
                         "CREATE TABLE children (id TEXT PRIMARY KEY NOT NULL,"
                         "  parent_id TEXT NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED);",
                         "create test tables")
                  .ok());
  auto chain = AuditChain::Load(*conn, AuditChainOptions{{}, 1000, 60'000, [] { return std::int64_t{0}; }});
  ASSERT_TRUE(chain.ok());
  std::shared_ptr<AuditChain> head = *chain;
  auto queue = std::make_unique<WriteQueue>(std::move(*conn), WriteQueueOptions{}, head);
  auto append = [head](int n) {
    return [head, n](Connection& c) -> Status {
      auto seqs = head->Append(c, {TestAudit("store.read", "store/x", n)});
      return seqs.ok() ? Status::Ok() : Status(seqs.error());
    };
  };

  // Hold the writer so that the audit record and the orphan share one batch.
  std::promise<void> started, release;
  auto blocked = queue->Submit([&](Connection&) -> Status {
    started.set_value();
    release.get_future().wait();
    return Status::Ok();
  });
  started.get_future().wait();
  auto audited = queue->Submit(append(1));
  auto orphan = queue->Submit([](Connection& c) -> Status {
    return c.Exec("INSERT INTO children (id, parent_id) VALUES ('c', 'missing')", "insert orphan");
  });
  release.set_value();
  EXPECT_TRUE(blocked.get().ok());
  Status audited_status = audited.get();
  ASSERT_FALSE(audited_status.ok());
  EXPECT_EQ(audited_status.error().code, ErrorCode::kUnavailable);
  EXPECT_FALSE(orphan.get().ok());
  EXPECT_EQ(head->head_seq(), 0);

  ASSERT_TRUE(queue->Run(append(2)).ok());
  EXPECT_EQ(head->head_seq(), 1);
  queue.reset();
  Reopen();
  auto records = AllRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].seq, 1);
  EXPECT_EQ(records[0].entry.request_id, "req-2");
  EXPECT_TRUE(Verify().ok);
}

// ---- checkpoints ----

TEST_P(AuditStorageTest, CheckpointEveryNRecordsAndOnClose) {
  UseSigningKey(3, 3'600'000);
  for (int i = 1; i <= 7; ++i) Append(i);
  auto checkpoints = AllCheckpoints();
  ASSERT_EQ(checkpoints.size(), 2u);  // written in the batch that reached 3 and 6
  EXPECT_EQ(checkpoints[0].seq, 3);
  EXPECT_EQ(checkpoints[1].seq, 6);
  auto key_id = core::KeyId(TestKey().public_pem);
  ASSERT_TRUE(key_id.ok());
  EXPECT_EQ(checkpoints[0].key_id, *key_id);

  Reopen();  // close writes a final checkpoint over seq 7
  checkpoints = AllCheckpoints();
  ASSERT_EQ(checkpoints.size(), 3u);
  EXPECT_EQ(checkpoints[2].seq, 7);
  core::ChainReport report = Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.checkpoints_verified, 3);

  Reopen();  // nothing new: no further checkpoint
  EXPECT_EQ(AllCheckpoints().size(), 3u);
}

TEST_P(AuditStorageTest, CheckpointAfterTheIntervalWhileIdle) {
  UseSigningKey(1'000'000, 50);
  Append(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (AllCheckpoints().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto checkpoints = AllCheckpoints();
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].seq, 1);
  // Idle with nothing new: no more checkpoints.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(AllCheckpoints().size(), 1u);
  EXPECT_TRUE(Verify().ok);
}

TEST_P(AuditStorageTest, TruncationBehindACheckpointIsDetected) {
  UseSigningKey(5, 3'600'000);
  for (int i = 1; i <= 5; ++i) Append(i);  // checkpoint at 5
  auto records = AllRecords();
  records.resize(3);
  core::ChainReport report = core::VerifyChain(records, AllCheckpoints(), TestKey().public_pem);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 4);
}

TEST_P(AuditStorageTest, WithoutAKeyThereAreNoCheckpoints) {
  for (int i = 1; i <= 3; ++i) Append(i);
  Reopen();
  EXPECT_TRUE(AllCheckpoints().empty());
}

TEST_P(AuditStorageTest, AnInvalidSigningKeyIsRefusedAtOpen) {
  Close();
  options_.signing_key_pem = pg_options_.signing_key_pem = TestKey().public_pem;  // not a private key
  auto opened = postgres() ? OpenPostgresRepository(pg_options_) : OpenSqliteRepository(options_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(opened.error().message.find("BEGIN"), std::string::npos);
}

TEST_P(AuditStorageTest, ThePrivateKeyIsNeverWrittenToTheDatabase) {
  UseSigningKey(1, 3'600'000);
  for (int i = 1; i <= 3; ++i) Append(i);
  Close();
  // The base64 body of the PEM, in any of the database's files.
  const std::string& pem = TestKey().private_pem;
  const std::string body = pem.substr(pem.find('\n') + 1, 40);
  if (postgres()) {
    // Every row of every table of the database, as text (base64 needs no quoting in SQL).
    auto rows_containing = [&](const std::string& text) {
      return QueryInt(
          "SELECT COUNT(*) FROM information_schema.tables t, "
          "LATERAL query_to_xml(format('SELECT row_to_json(r)::text AS j FROM %I.%I r', t.table_schema, "
          "t.table_name), true, false, '') AS x(content) "
          "WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND x.content::text LIKE '%" +
          text + "%'");
    };
    EXPECT_EQ(rows_containing(body), 0);
    auto key_id = core::KeyId(TestKey().public_pem);
    ASSERT_TRUE(key_id.ok());
    EXPECT_GE(rows_containing(*key_id), 1) << "the scan reads the checkpoints, which name the key";
    return;
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(body), std::string::npos) << entry.path();
  }
}

// ---- reading the trail ----

TEST_P(AuditStorageTest, AppendAuditWithoutWaitingIsWrittenWithTheNextBatch) {
  ASSERT_TRUE(repo_->AppendAudit(TestAudit("store.read", "store/a", 1), false).ok());
  ASSERT_TRUE(InsertStoreAudited(*repo_, MakeStore("a")).ok());
  auto records = AllRecords();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].entry.action, "store.read");
  EXPECT_EQ(records[1].entry.action, "store.register");
}

TEST_P(AuditStorageTest, ListAuditFiltersAndPages) {
  for (int i = 1; i <= 9; ++i) {
    core::AuditEntry entry = TestAudit(i % 3 == 0 ? "store.label" : "store.read", "store/s" + std::to_string(i % 2), i);
    entry.principal = i <= 4 ? "alice" : "bob";
    ASSERT_TRUE(repo_->AppendAudit(entry, true).ok());
  }
  AuditQuery query;
  query.principal = "bob";
  EXPECT_EQ(Seqs(AllRecords(query)), (std::vector<std::int64_t>{5, 6, 7, 8, 9}));
  query.action = "store.label";
  EXPECT_EQ(Seqs(AllRecords(query)), (std::vector<std::int64_t>{6, 9}));
  query.target = "store/s0";
  EXPECT_EQ(Seqs(AllRecords(query)), (std::vector<std::int64_t>{6}));

  AuditQuery paged;
  paged.limit = 4;
  auto page = repo_->ListAudit(paged);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Seqs(page->items), (std::vector<std::int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(page->next_after_seq, 4);
  paged.after_seq = 8;
  page = repo_->ListAudit(paged);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Seqs(page->items), (std::vector<std::int64_t>{9}));
  EXPECT_EQ(page->next_after_seq, 0);

  paged.limit = 0;
  EXPECT_FALSE(repo_->ListAudit(paged).ok());
  EXPECT_FALSE(repo_->ListCheckpoints(0, 1001).ok());
}

// ---- group commit ----

TEST_P(AuditStorageTest, ConcurrentWritersShareCommitsAndTheChainStaysContiguous) {
  UseSigningKey(50, 3'600'000);
  constexpr int kThreads = 16;
  constexpr int kPerThread = 30;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-s" + std::to_string(i);
        WriteBatch batch;
        batch.effects.push_back(InsertStoreEffect{MakeStore(id)});
        batch.audit.push_back(TestAudit("store.register", "store/" + id, i));
        if (!repo_->Apply(batch).ok()) ++failures;
        if (i % 5 == 0 && !repo_->AppendAudit(TestAudit("store.read", "store/" + id, i), i % 10 == 0).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(failures.load(), 0);
  if (!postgres()) {  // SQLite's writer queue commits several writers at once; PostgreSQL has no queue
    const WriteQueueStats stats = dynamic_cast<const SqliteRepository&>(*repo_).write_queue_stats();
    EXPECT_LT(stats.batches, stats.mutations);  // batching happened
  }
  Reopen();  // drains the unwaited appends and checkpoints the head

  auto records = AllRecords();
  const std::int64_t expected = kThreads * kPerThread + kThreads * (kPerThread / 5);
  ASSERT_EQ(static_cast<std::int64_t>(records.size()), expected);
  for (std::size_t i = 0; i < records.size(); ++i) ASSERT_EQ(records[i].seq, static_cast<std::int64_t>(i + 1));
  core::ChainReport report = Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_GE(report.checkpoints_verified, 2);
  EXPECT_EQ(AllCheckpoints().back().seq, expected);
}

INSTANTIATE_BACKENDS(AuditStorageTest);

}  // namespace
}  // namespace storeplane::db
