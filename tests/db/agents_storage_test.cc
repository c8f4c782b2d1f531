// Agents and operations in storage (schema v3): one-time enrollment tokens, the store's
// agent row (enroll, re-enroll, rotate, revoke), operations with optimistic concurrency,
// last successes, unaudited telemetry, listings, persistence and the upgrade from v2. The
// fixture's tests run on both back ends (SQLite and PostgreSQL); the upgrade is SQLite's.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "db/migrations.h"
#include "db_test_util.h"

namespace storeplane::db {
namespace {

using testing::BackendTest;
using testing::ExecRaw;
using testing::MakeStore;
using testing::QueryIntRaw;
using testing::TestAudit;

constexpr std::int64_t kT0 = 1'700'000'000'000;

EnrollmentToken MakeEnrollmentToken(std::string id, std::string store_id) {
  EnrollmentToken token;
  token.token_hash = "hash-" + id;
  token.id = std::move(id);
  token.store_id = std::move(store_id);
  token.created_by = "alice";
  token.created_at_ms = kT0;
  token.expires_at_ms = kT0 + 3'600'000;
  return token;
}

AgentRecord MakeAgent(std::string store_id, std::string id, std::string credential_hash) {
  AgentRecord agent;
  agent.store_id = std::move(store_id);
  agent.id = std::move(id);
  agent.credential_hash = std::move(credential_hash);
  agent.enrolled_at_ms = kT0 + 1000;
  agent.agent_version = "1.0.0";
  return agent;
}

OperationRecord MakeOperation(std::string id, std::string store_id, std::int64_t created_at_ms = kT0) {
  OperationRecord op;
  op.id = std::move(id);
  op.store_id = std::move(store_id);
  op.name = "cache.flush";
  op.params_json = R"({"types":["config"]})";
  op.requested_by = "alice";
  op.request_id = "req-" + op.id;
  op.created_at_ms = created_at_ms;
  op.expires_at_ms = created_at_ms + 600'000;
  op.timeout_s = 120;
  return op;
}

Repository::AgentTelemetry Telemetry(std::string store_id, std::string agent_id) {
  Repository::AgentTelemetry telemetry;
  telemetry.store_id = std::move(store_id);
  telemetry.agent_id = std::move(agent_id);
  telemetry.agent_version = "1.1.0";
  telemetry.last_seen_ms = kT0 + 5000;
  telemetry.availability = "online";
  telemetry.health = "degraded";
  telemetry.release = "2024.06.1";
  telemetry.reported_isolation = "dedicated";
  telemetry.allowed_operations = {"health.probe", "cache.flush"};
  telemetry.checks_json = R"([{"name":"disk","status":"warn","code":"disk_low"}])";
  return telemetry;
}

std::vector<std::string> Ids(const std::vector<OperationRecord>& ops) {
  std::vector<std::string> ids;
  for (const auto& op : ops) ids.push_back(op.id);
  return ids;
}

void ExpectSameOperation(const OperationRecord& got, const OperationRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.store_id, want.store_id);
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.params_json, want.params_json);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.code, want.code);
  EXPECT_EQ(got.result_json, want.result_json);
  EXPECT_EQ(got.requested_by, want.requested_by);
  EXPECT_EQ(got.request_id, want.request_id);
  EXPECT_EQ(got.created_at_ms, want.created_at_ms);
  EXPECT_EQ(got.expires_at_ms, want.expires_at_ms);
  EXPECT_EQ(got.timeout_s, want.timeout_s);
  EXPECT_EQ(got.delivered_at_ms, want.delivered_at_ms);
  EXPECT_EQ(got.delivered_session, want.delivered_session);
  EXPECT_EQ(got.delivery_count, want.delivery_count);
  EXPECT_EQ(got.finished_at_ms, want.finished_at_ms);
  EXPECT_EQ(got.version, want.version);
}

class AgentsStorageTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Insert(MakeStore("shop-a"));
    Insert(MakeStore("shop-b"));
  }

  // One audited batch of `effects`.
  Result<WriteResult> ApplyAudited(std::vector<Effect> effects) {
    WriteBatch batch;
    batch.effects = std::move(effects);
    batch.audit.push_back(TestAudit("test.write", "test", ++audit_n_));
    return repo_->Apply(batch);
  }

  void MustApply(std::vector<Effect> effects) {
    auto applied = ApplyAudited(std::move(effects));
    ASSERT_TRUE(applied.ok()) << applied.error().message;
  }

  // Creates an enrollment token for the store and enrolls `agent` with it.
  void Enroll(const AgentRecord& agent, const std::string& token_id) {
    MustApply({InsertEnrollmentTokenEffect{MakeEnrollmentToken(token_id, agent.store_id)}});
    MustApply({EnrollAgentEffect{token_id, kT0 + 1000, agent}});
  }

  AgentRecord Agent(const std::string& store_id) {
    auto agent = repo_->GetAgent(store_id);
    EXPECT_TRUE(agent.ok() && agent->has_value()) << store_id;
    return agent.ok() && agent->has_value() ? **agent : AgentRecord{};
  }

  OperationRecord Operation(const std::string& id) {
    auto op = repo_->GetOperation(id);
    EXPECT_TRUE(op.ok()) << id;
    return op.ok() ? *op : OperationRecord{};
  }

  long long AuditRows() { return QueryInt("SELECT COUNT(*) FROM audit_log"); }
  long long Rows(const std::string& table) { return QueryInt("SELECT COUNT(*) FROM " + table); }

  // True when the database refuses `sql` (behind the repository's back) for a CHECK
  // constraint: SQLITE_CONSTRAINT, or PostgreSQL's check_violation (23514).
  bool RefusedByCheck(const std::string& sql) {
    if (!postgres()) return ExecRaw(options_.path, sql) == SQLITE_CONSTRAINT;
    auto conn = pg::PgConnection::Open(pg_options_.conninfo);
    if (!conn.ok()) return false;
    return !conn->Script(sql, "test").ok() && conn->last_failure().sqlstate == "23514";
  }

  int audit_n_ = 100;
};

ErrorCode CodeOf(const Result<WriteResult>& result) {
  EXPECT_FALSE(result.ok());
  return result.ok() ? ErrorCode::kInternal : result.error().code;
}

// ---- schema ----

TEST_P(AgentsStorageTest, SchemaVersionThreeHasTheNewTablesAndIndexes) {
  EXPECT_GE(LatestSchemaVersion(), 3);
  if (postgres()) {  // one PostgreSQL schema version holds SQLite's v1..v6
    for (const char* table : {"enrollment_tokens", "agents", "operations", "last_successes"}) {
      EXPECT_EQ(QueryInt(std::string("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND "
                                     "tablename = '") +
                         table + "'"),
                1)
          << table;
    }
    for (const char* index : {"operations_by_store", "operations_open", "enrollment_tokens_by_store"}) {
      EXPECT_EQ(QueryInt(std::string("SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND "
                                     "indexname = '") +
                         index + "'"),
                1)
          << index;
    }
    EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM pg_trigger WHERE tgname = 'operations_notify'"), 1);
    return;
  }
  EXPECT_EQ(QueryIntRaw(options_.path, "SELECT COUNT(*) FROM schema_migrations WHERE version = 3"), 1);
  for (const char* table : {"enrollment_tokens", "agents", "operations", "last_successes"}) {
    EXPECT_EQ(
        QueryIntRaw(options_.path,
                    std::string("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='") + table + "'"),
        1)
        << table;
  }
  for (const char* index : {"operations_by_store", "operations_open"}) {
    EXPECT_EQ(
        QueryIntRaw(options_.path,
                    std::string("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='") + index + "'"),
        1)
        << index;
  }
}

TEST_P(AgentsStorageTest, CheckConstraintsRefuseUnknownStateAvailabilityHealthAndKind) {
  Enroll(MakeAgent("shop-a", "agt_1", "cred-1"), "enr_1");
  MustApply({InsertOperationEffect{MakeOperation("op_1", "shop-a")}});
  Close();
  EXPECT_TRUE(RefusedByCheck("UPDATE operations SET state = 'running'"));
  EXPECT_TRUE(RefusedByCheck("UPDATE agents SET availability = 'gone'"));
  EXPECT_TRUE(RefusedByCheck("UPDATE agents SET health = 'fine'"));
  EXPECT_TRUE(RefusedByCheck("INSERT INTO last_successes VALUES ('shop-a', 'deploy', 'x', 1, '')"));
}

// ---- enrollment ----

TEST_P(AgentsStorageTest, EnrollmentTokenRoundTripAndErrors) {
  EnrollmentToken token = MakeEnrollmentToken("enr_1", "shop-a");
  MustApply({InsertEnrollmentTokenEffect{token}});

  auto found = repo_->FindEnrollmentTokenByHash("hash-enr_1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, "enr_1");
  EXPECT_EQ((*found)->token_hash, "hash-enr_1");
  EXPECT_EQ((*found)->store_id, "shop-a");
  EXPECT_EQ((*found)->created_by, "alice");
  EXPECT_EQ((*found)->created_at_ms, token.created_at_ms);
  EXPECT_EQ((*found)->expires_at_ms, token.expires_at_ms);
  EXPECT_FALSE((*found)->used_at_ms.has_value());

  auto missing = repo_->FindEnrollmentTokenByHash("hash-unknown");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  EXPECT_EQ(CodeOf(ApplyAudited({InsertEnrollmentTokenEffect{token}})), ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertEnrollmentTokenEffect{MakeEnrollmentToken("enr_2", "no-such-store")}})),
            ErrorCode::kNotFound);
  EXPECT_EQ(Rows("enrollment_tokens"), 1);
}

TEST_P(AgentsStorageTest, EnrollmentInsertsTheAgentWithFreshTelemetryAndUsesTheToken) {
  AgentRecord agent = MakeAgent("shop-a", "agt_1", "cred-1");
  agent.availability = "online";  // ignored: a new agent is never seen
  agent.health = "healthy";
  agent.last_seen_ms = kT0;
  agent.allowed_operations = {"cache.flush"};
  Enroll(agent, "enr_1");

  AgentRecord stored = Agent("shop-a");
  EXPECT_EQ(stored.store_id, "shop-a");
  EXPECT_EQ(stored.id, "agt_1");
  EXPECT_EQ(stored.credential_hash, "cred-1");
  EXPECT_EQ(stored.enrolled_at_ms, agent.enrolled_at_ms);
  EXPECT_EQ(stored.agent_version, "1.0.0");
  EXPECT_EQ(stored.availability, "never_seen");
  EXPECT_EQ(stored.health, "unknown");
  EXPECT_FALSE(stored.last_seen_ms.has_value());
  EXPECT_FALSE(stored.rotated_at_ms.has_value());
  EXPECT_FALSE(stored.revoked_at_ms.has_value());
  EXPECT_FALSE(stored.release.has_value());
  EXPECT_FALSE(stored.reported_isolation.has_value());
  EXPECT_TRUE(stored.allowed_operations.empty());
  EXPECT_EQ(stored.checks_json, "[]");

  auto token = repo_->FindEnrollmentTokenByHash("hash-enr_1");
  ASSERT_TRUE(token.ok() && token->has_value());
  EXPECT_EQ((*token)->used_at_ms, std::optional<std::int64_t>(kT0 + 1000));

  auto none = repo_->GetAgent("shop-b");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_P(AgentsStorageTest, AnEnrollmentTokenIsUsedOnlyOnce) {
  Enroll(MakeAgent("shop-a", "agt_1", "cred-1"), "enr_1");
  const long long audit_before = AuditRows();

  auto again = ApplyAudited({EnrollAgentEffect{"enr_1", kT0 + 2000, MakeAgent("shop-a", "agt_2", "cred-2")}});
  EXPECT_EQ(CodeOf(again), ErrorCode::kConflict);
  EXPECT_EQ(AuditRows(), audit_before);  // no change, no audit
  AgentRecord stored = Agent("shop-a");
  EXPECT_EQ(stored.id, "agt_1");
  EXPECT_EQ(stored.credential_hash, "cred-1");
  auto token = repo_->FindEnrollmentTokenByHash("hash-enr_1");
  ASSERT_TRUE(token.ok() && token->has_value());
  EXPECT_EQ((*token)->used_at_ms, std::optional<std::int64_t>(kT0 + 1000));  // the first use stays

  EXPECT_EQ(CodeOf(ApplyAudited({EnrollAgentEffect{"enr_nope", kT0, MakeAgent("shop-a", "agt_3", "cred-3")}})),
            ErrorCode::kNotFound);
}

TEST_P(AgentsStorageTest, AnotherStoresTokenDoesNotEnrollAndStaysUnused) {
  MustApply({InsertEnrollmentTokenEffect{MakeEnrollmentToken("enr_b", "shop-b")}});
  EXPECT_EQ(CodeOf(ApplyAudited({EnrollAgentEffect{"enr_b", kT0, MakeAgent("shop-a", "agt_1", "cred-1")}})),
            ErrorCode::kNotFound);
  auto agent = repo_->GetAgent("shop-a");
  ASSERT_TRUE(agent.ok());
  EXPECT_FALSE(agent->has_value());
  auto token = repo_->FindEnrollmentTokenByHash("hash-enr_b");
  ASSERT_TRUE(token.ok() && token->has_value());
  EXPECT_FALSE((*token)->used_at_ms.has_value());
}

TEST_P(AgentsStorageTest, ReEnrollmentReplacesTheCredentialAndResetsTheAgent) {
  Enroll(MakeAgent("shop-a", "agt_1", "cred-1"), "enr_1");
  Repository::TelemetryBatch telemetry;
  telemetry.agents.push_back(Telemetry("shop-a", "agt_1"));
  ASSERT_TRUE(repo_->WriteTelemetry(telemetry).ok());
  MustApply({RotateAgentCredentialEffect{"shop-a", "agt_1", "cred-1b", kT0 + 3000}});
  MustApply({RevokeAgentEffect{"shop-a", kT0 + 4000}});

  AgentRecord second = MakeAgent("shop-a", "agt_2", "cred-2");
  second.enrolled_at_ms = kT0 + 9000;
  second.agent_version = "2.0.0";
  Enroll(second, "enr_2");

  AgentRecord stored = Agent("shop-a");
  EXPECT_EQ(stored.id, "agt_2");
  EXPECT_EQ(stored.credential_hash, "cred-2");
  EXPECT_EQ(stored.enrolled_at_ms, kT0 + 9000);
  EXPECT_EQ(stored.agent_version, "2.0.0");
  EXPECT_EQ(stored.availability, "never_seen");
  EXPECT_EQ(stored.health, "unknown");
  EXPECT_FALSE(stored.last_seen_ms.has_value());
  EXPECT_FALSE(stored.revoked_at_ms.has_value());
  EXPECT_FALSE(stored.rotated_at_ms.has_value());
  EXPECT_FALSE(stored.release.has_value());
  EXPECT_FALSE(stored.reported_isolation.has_value());
  EXPECT_TRUE(stored.allowed_operations.empty());
  EXPECT_EQ(stored.checks_json, "[]");
  EXPECT_EQ(Rows("agents"), 1);

  // The old agent id no longer matches: rotation and telemetry for it do nothing.
  EXPECT_EQ(CodeOf(ApplyAudited({RotateAgentCredentialEffect{"shop-a", "agt_1", "cred-x", kT0}})),
            ErrorCode::kPreconditionFailed);
  ASSERT_TRUE(repo_->WriteTelemetry(telemetry).ok());
  EXPECT_EQ(Agent("shop-a").availability, "never_seen");
}

TEST_P(AgentsStorageTest, RotationReplacesTheCredentialOfTheCurrentAgentOnly) {
  Enroll(MakeAgent("shop-a", "agt_1", "cred-1"), "enr_1");
  MustApply({RotateAgentCredentialEffect{"shop-a", "agt_1", "cred-2", kT0 + 5000}});
  AgentRecord stored = Agent("shop-a");
  EXPECT_EQ(stored.id, "agt_1");
  EXPECT_EQ(stored.credential_hash, "cred-2");
  EXPECT_EQ(stored.rotated_at_ms, std::optional<std::int64_t>(kT0 + 5000));

  EXPECT_EQ(CodeOf(ApplyAudited({RotateAgentCredentialEffect{"shop-a", "agt_other", "cred-3", kT0}})),
            ErrorCode::kPreconditionFailed);
  EXPECT_EQ(CodeOf(ApplyAudited({RotateAgentCredentialEffect{"shop-b", "agt_1", "cred-3", kT0}})),
            ErrorCode::kNotFound);
  EXPECT_EQ(Agent("shop-a").credential_hash, "cred-2");

  MustApply({RevokeAgentEffect{"shop-a", kT0 + 6000}});
  EXPECT_EQ(CodeOf(ApplyAudited({RotateAgentCredentialEffect{"shop-a", "agt_1", "cred-4", kT0}})),
            ErrorCode::kConflict);
  EXPECT_EQ(Agent("shop-a").credential_hash, "cred-2");
}

TEST_P(AgentsStorageTest, RevocationOnceThenConflictAndNotFoundWithoutAnAgent) {
  Enroll(MakeAgent("shop-a", "agt_1", "cred-1"), "enr_1");
  MustApply({RevokeAgentEffect{"shop-a", kT0 + 7000}});
  EXPECT_EQ(Agent("shop-a").revoked_at_ms, std::optional<std::int64_t>(kT0 + 7000));
  EXPECT_EQ(CodeOf(ApplyAudited({RevokeAgentEffect{"shop-a", kT0 + 8000}})), ErrorCode::kConflict);
  EXPECT_EQ(Agent("shop-a").revoked_at_ms, std::optional<std::int64_t>(kT0 + 7000));
  EXPECT_EQ(CodeOf(ApplyAudited({RevokeAgentEffect{"shop-b", kT0}})), ErrorCode::kNotFound);
}

TEST_P(AgentsStorageTest, ListAgentsReturnsEveryAgentByStoreIdRevokedIncluded) {
  Insert(MakeStore("shop-0"));
  Enroll(MakeAgent("shop-b", "agt_b", "cred-b"), "enr_b");
  Enroll(MakeAgent("shop-0", "agt_0", "cred-0"), "enr_0");
  Enroll(MakeAgent("shop-a", "agt_a", "cred-a"), "enr_a");
  MustApply({RevokeAgentEffect{"shop-a", kT0}});
  auto agents = repo_->ListAgents();
  ASSERT_TRUE(agents.ok());
  ASSERT_EQ(agents->size(), 3u);
  EXPECT_EQ((*agents)[0].store_id, "shop-0");
  EXPECT_EQ((*agents)[1].store_id, "shop-a");
  EXPECT_TRUE((*agents)[1].revoked_at_ms.has_value());
  EXPECT_EQ((*agents)[2].store_id, "shop-b");
  EXPECT_EQ((*agents)[2].id, "agt_b");
}

TEST_P(AgentsStorageTest, AnAgentIdTakenByAnotherStoreIsAlreadyExists) {
  Enroll(MakeAgent("shop-a", "agt_1", "cred-1"), "enr_1");
  MustApply({InsertEnrollmentTokenEffect{MakeEnrollmentToken("enr_2", "shop-b")}});
  EXPECT_EQ(CodeOf(ApplyAudited({EnrollAgentEffect{"enr_2", kT0, MakeAgent("shop-b", "agt_1", "cred-2")}})),
            ErrorCode::kAlreadyExists);
  auto token = repo_->FindEnrollmentTokenByHash("hash-enr_2");
  ASSERT_TRUE(token.ok() && token->has_value());
  EXPECT_FALSE((*token)->used_at_ms.has_value());  // rolled back with the failed batch
}

// ---- operations ----

TEST_P(AgentsStorageTest, OperationInsertReturnsTheStoredRow) {
  OperationRecord op = MakeOperation("op_1", "shop-a");
  auto applied = ApplyAudited({InsertOperationEffect{op}});
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  ASSERT_EQ(applied->operations.size(), 1u);
  ExpectSameOperation(applied->operations[0], op);
  ExpectSameOperation(Operation("op_1"), op);

  auto missing = repo_->GetOperation("op_nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  EXPECT_EQ(CodeOf(ApplyAudited({InsertOperationEffect{op}})), ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertOperationEffect{MakeOperation("op_2", "no-such-store")}})),
            ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(ApplyAudited({InsertOperationEffect{[] {
              OperationRecord bad = MakeOperation("op_3", "shop-a");
              bad.state = "running";
              return bad;
            }()}})),
            ErrorCode::kInternal);
  EXPECT_EQ(Rows("operations"), 1);
}

TEST_P(AgentsStorageTest, OperationUpdateUsesOptimisticConcurrency) {
  OperationRecord op = MakeOperation("op_1", "shop-a");
  MustApply({InsertOperationEffect{op}});

  OperationRecord done = op;
  done.state = "succeeded";
  done.result_json = R"({"flushed":["config"]})";
  done.delivered_at_ms = kT0 + 10;
  done.delivered_session = "sess-1";
  done.delivery_count = 1;
  done.finished_at_ms = kT0 + 20;
  done.version = 2;
  auto applied = ApplyAudited({UpdateOperationEffect{done, 1}});
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  ASSERT_EQ(applied->operations.size(), 1u);
  ExpectSameOperation(applied->operations[0], done);
  ExpectSameOperation(Operation("op_1"), done);

  OperationRecord stale = op;
  stale.state = "failed";
  stale.code = "timeout";
  stale.version = 2;
  auto conflict = ApplyAudited({UpdateOperationEffect{stale, 1}});
  EXPECT_EQ(CodeOf(conflict), ErrorCode::kPreconditionFailed);
  if (!conflict.ok()) {
    EXPECT_NE(conflict.error().message.find("version 2"), std::string::npos);
  }

  OperationRecord skip = done;
  skip.version = 4;
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateOperationEffect{skip, 2}})), ErrorCode::kInternal);

  OperationRecord unknown = MakeOperation("op_nope", "shop-a");
  unknown.version = 2;
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateOperationEffect{unknown, 1}})), ErrorCode::kNotFound);

  OperationRecord moved = done;  // another store's view of it
  moved.store_id = "shop-b";
  moved.version = 3;
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateOperationEffect{moved, 2}})), ErrorCode::kNotFound);

  ExpectSameOperation(Operation("op_1"), done);
}

TEST_P(AgentsStorageTest, WriteResultListsOperationsInEffectOrder) {
  MustApply({InsertOperationEffect{MakeOperation("op_1", "shop-a")}});
  OperationRecord delivered = MakeOperation("op_1", "shop-a");
  delivered.state = "expired";
  delivered.code = "expired";
  delivered.version = 2;
  auto applied =
      ApplyAudited({InsertOperationEffect{MakeOperation("op_2", "shop-b")},
                    UpsertLastSuccessEffect{LastSuccess{"shop-a", "operation", "cache.flush", kT0, "op_0"}},
                    UpdateOperationEffect{delivered, 1}, InsertOperationEffect{MakeOperation("op_3", "shop-a")}});
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_EQ(Ids(applied->operations), (std::vector<std::string>{"op_2", "op_1", "op_3"}));
  EXPECT_EQ(applied->operations[1].state, "expired");
  EXPECT_EQ(applied->operations[1].version, 2);
  EXPECT_EQ(applied->audit_seqs.size(), 1u);
}

TEST_P(AgentsStorageTest, AFailedBatchWritesNeitherItsEffectsNorItsAudit) {
  Enroll(MakeAgent("shop-a", "agt_1", "cred-1"), "enr_1");
  const long long audit_before = AuditRows();

  auto applied = ApplyAudited(
      {InsertOperationEffect{MakeOperation("op_1", "shop-a")},
       InsertEnrollmentTokenEffect{MakeEnrollmentToken("enr_2", "shop-b")},
       UpsertLastSuccessEffect{LastSuccess{"shop-a", "check", "disk", kT0, ""}}, RevokeAgentEffect{"shop-a", kT0},
       EnrollAgentEffect{"enr_1", kT0 + 5000, MakeAgent("shop-a", "agt_2", "cred-2")}});  // used
  EXPECT_EQ(CodeOf(applied), ErrorCode::kConflict);

  EXPECT_EQ(AuditRows(), audit_before);
  EXPECT_EQ(Rows("operations"), 0);
  EXPECT_EQ(Rows("last_successes"), 0);
  EXPECT_EQ(Rows("enrollment_tokens"), 1);
  AgentRecord stored = Agent("shop-a");
  EXPECT_EQ(stored.id, "agt_1");
  EXPECT_FALSE(stored.revoked_at_ms.has_value());
}

TEST_P(AgentsStorageTest, EffectsWithoutAuditAreRefused) {
  WriteBatch batch;
  batch.effects.push_back(InsertOperationEffect{MakeOperation("op_1", "shop-a")});
  batch.effects.push_back(InsertEnrollmentTokenEffect{MakeEnrollmentToken("enr_1", "shop-a")});
  auto applied = repo_->Apply(batch);
  EXPECT_EQ(CodeOf(applied), ErrorCode::kInternal);
  EXPECT_EQ(Rows("operations"), 0);
  EXPECT_EQ(Rows("enrollment_tokens"), 0);
}

TEST_P(AgentsStorageTest, ListOperationsNewestFirstWithACursor) {
  std::vector<Effect> effects;
  for (int i = 1; i <= 5; ++i) {
    effects.push_back(InsertOperationEffect{MakeOperation("op_a" + std::to_string(i), "shop-a", kT0 + i)});
    if (i % 2 == 0) {
      effects.push_back(InsertOperationEffect{MakeOperation("op_b" + std::to_string(i), "shop-b", kT0 + i)});
    }
  }
  MustApply(std::move(effects));

  auto first = repo_->ListOperations("shop-a", "", 2);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(Ids(*first), (std::vector<std::string>{"op_a5", "op_a4"}));
  auto second = repo_->ListOperations("shop-a", "op_a4", 2);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Ids(*second), (std::vector<std::string>{"op_a3", "op_a2"}));
  auto third = repo_->ListOperations("shop-a", "op_a2", 2);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(Ids(*third), (std::vector<std::string>{"op_a1"}));
  auto end = repo_->ListOperations("shop-a", "op_a1", 2);
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->empty());

  auto all_b = repo_->ListOperations("shop-b", "", 1000);
  ASSERT_TRUE(all_b.ok());
  EXPECT_EQ(Ids(*all_b), (std::vector<std::string>{"op_b4", "op_b2"}));
  auto none = repo_->ListOperations("no-such-store", "", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  for (int limit : {0, -1, 1001}) {
    auto bad = repo_->ListOperations("shop-a", "", limit);
    ASSERT_FALSE(bad.ok()) << limit;
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  }
  for (const char* cursor : {"op_nope", "op_b4"}) {  // unknown, or another store's
    auto bad = repo_->ListOperations("shop-a", cursor, 10);
    ASSERT_FALSE(bad.ok()) << cursor;
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST_P(AgentsStorageTest, ListOpenOperationsOldestFirstAcrossStores) {
  MustApply(
      {InsertOperationEffect{MakeOperation("op_1", "shop-b")}, InsertOperationEffect{MakeOperation("op_2", "shop-a")},
       InsertOperationEffect{MakeOperation("op_3", "shop-a")}, InsertOperationEffect{MakeOperation("op_4", "shop-b")},
       InsertOperationEffect{MakeOperation("op_5", "shop-a")}});
  OperationRecord failed = MakeOperation("op_2", "shop-a");
  failed.state = "failed";
  failed.code = "timeout";
  failed.version = 2;
  OperationRecord expired = MakeOperation("op_4", "shop-b");
  expired.state = "expired";
  expired.version = 2;
  MustApply({UpdateOperationEffect{failed, 1}, UpdateOperationEffect{expired, 1}});
  Repository::TelemetryBatch deliveries;
  deliveries.deliveries.push_back({"op_3", "sess", kT0 + 1});
  ASSERT_TRUE(repo_->WriteTelemetry(deliveries).ok());

  auto open = repo_->ListOpenOperations();
  ASSERT_TRUE(open.ok()) << open.error().message;
  EXPECT_EQ(Ids(*open), (std::vector<std::string>{"op_1", "op_3", "op_5"}));
  EXPECT_EQ((*open)[1].state, "delivered");
}

TEST_P(AgentsStorageTest, OpenOperationsAreCountedByState) {
  auto none = repo_->CountOpenOperationsByState();
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
  MustApply(
      {InsertOperationEffect{MakeOperation("op_1", "shop-a")}, InsertOperationEffect{MakeOperation("op_2", "shop-b")},
       InsertOperationEffect{MakeOperation("op_3", "shop-a")}, InsertOperationEffect{MakeOperation("op_4", "shop-a")}});
  OperationRecord failed = MakeOperation("op_4", "shop-a");
  failed.state = "failed";
  failed.version = 2;
  MustApply({UpdateOperationEffect{failed, 1}});
  Repository::TelemetryBatch deliveries;
  deliveries.deliveries.push_back({"op_3", "sess", kT0 + 1});
  ASSERT_TRUE(repo_->WriteTelemetry(deliveries).ok());

  auto counts = repo_->CountOpenOperationsByState();
  ASSERT_TRUE(counts.ok()) << counts.error().message;
  EXPECT_EQ(*counts, (std::vector<std::pair<std::string, std::int64_t>>{{"delivered", 1}, {"queued", 2}}));
}

// ---- last successes ----

TEST_P(AgentsStorageTest, LastSuccessesUpsertAndListByKindThenName) {
  MustApply({UpsertLastSuccessEffect{LastSuccess{"shop-a", "pipeline", "deploy", kT0 + 1, "run_1"}},
             UpsertLastSuccessEffect{LastSuccess{"shop-a", "operation", "cache.flush", kT0 + 2, "op_1"}},
             UpsertLastSuccessEffect{LastSuccess{"shop-a", "check", "storefront", kT0 + 3, ""}},
             UpsertLastSuccessEffect{LastSuccess{"shop-a", "check", "disk", kT0 + 4, ""}},
             UpsertLastSuccessEffect{LastSuccess{"shop-b", "check", "disk", kT0 + 5, ""}}});
  MustApply({UpsertLastSuccessEffect{LastSuccess{"shop-a", "operation", "cache.flush", kT0 + 10, "op_2"}}});
  // An older success never replaces a newer one.
  MustApply({UpsertLastSuccessEffect{LastSuccess{"shop-a", "pipeline", "deploy", kT0, "run_0"}}});

  auto list = repo_->ListLastSuccesses("shop-a");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].kind, "check");
  EXPECT_EQ((*list)[0].name, "disk");
  EXPECT_EQ((*list)[1].name, "storefront");
  EXPECT_EQ((*list)[2].kind, "operation");
  EXPECT_EQ((*list)[2].at_ms, kT0 + 10);
  EXPECT_EQ((*list)[2].ref, "op_2");
  EXPECT_EQ((*list)[3].kind, "pipeline");
  EXPECT_EQ((*list)[3].at_ms, kT0 + 1);
  EXPECT_EQ((*list)[3].ref, "run_1");
  EXPECT_EQ((*list)[3].store_id, "shop-a");

  EXPECT_EQ(CodeOf(ApplyAudited({UpsertLastSuccessEffect{LastSuccess{"shop-a", "deploy", "x", kT0, ""}}})),
            ErrorCode::kInternal);
  EXPECT_EQ(CodeOf(ApplyAudited({UpsertLastSuccessEffect{LastSuccess{"no-such-store", "check", "disk", kT0, ""}}})),
            ErrorCode::kNotFound);
}

// ---- telemetry ----

TEST_P(AgentsStorageTest, TelemetryUpdatesTheMatchingAgentWithoutAnyAuditRecord) {
  Enroll(MakeAgent("shop-a", "agt_a", "cred-a"), "enr_a");
  Enroll(MakeAgent("shop-b", "agt_b", "cred-b"), "enr_b");
  const long long audit_before = AuditRows();

  Repository::TelemetryBatch batch;
  batch.agents.push_back(Telemetry("shop-a", "agt_a"));
  batch.agents.push_back(Telemetry("shop-b", "agt_old"));       // mismatched agent id: skipped
  batch.agents.push_back(Telemetry("no-such-store", "agt_a"));  // no row: skipped
  batch.successes.push_back({"shop-a", "check", "disk", kT0 + 5000, ""});
  batch.successes.push_back({"no-such-store", "check", "disk", kT0 + 5000, ""});  // skipped
  Status st = repo_->WriteTelemetry(batch);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(AuditRows(), audit_before);

  AgentRecord a = Agent("shop-a");
  EXPECT_EQ(a.id, "agt_a");
  EXPECT_EQ(a.credential_hash, "cred-a");
  EXPECT_EQ(a.agent_version, "1.1.0");
  EXPECT_EQ(a.last_seen_ms, std::optional<std::int64_t>(kT0 + 5000));
  EXPECT_EQ(a.availability, "online");
  EXPECT_EQ(a.health, "degraded");
  EXPECT_EQ(a.release, std::optional<std::string>("2024.06.1"));
  EXPECT_EQ(a.reported_isolation, std::optional<std::string>("dedicated"));
  EXPECT_EQ(a.allowed_operations, (std::vector<std::string>{"health.probe", "cache.flush"}));
  EXPECT_EQ(a.checks_json, R"([{"name":"disk","status":"warn","code":"disk_low"}])");

  AgentRecord b = Agent("shop-b");
  EXPECT_EQ(b.availability, "never_seen");
  EXPECT_EQ(b.health, "unknown");
  EXPECT_FALSE(b.last_seen_ms.has_value());
  EXPECT_EQ(b.agent_version, "1.0.0");

  auto successes = repo_->ListLastSuccesses("shop-a");
  ASSERT_TRUE(successes.ok());
  ASSERT_EQ(successes->size(), 1u);
  EXPECT_EQ((*successes)[0].at_ms, kT0 + 5000);
  EXPECT_EQ(Rows("last_successes"), 1);

  // Going offline clears nothing but what the telemetry says.
  Repository::AgentTelemetry offline = Telemetry("shop-a", "agt_a");
  offline.availability = "offline";
  offline.health = "unknown";
  offline.release.reset();
  offline.reported_isolation.reset();
  offline.allowed_operations.clear();
  offline.checks_json.clear();
  Repository::TelemetryBatch second;
  second.agents.push_back(offline);
  ASSERT_TRUE(repo_->WriteTelemetry(second).ok());
  a = Agent("shop-a");
  EXPECT_EQ(a.availability, "offline");
  EXPECT_FALSE(a.release.has_value());
  EXPECT_TRUE(a.allowed_operations.empty());
  EXPECT_EQ(a.checks_json, "[]");
  EXPECT_EQ(AuditRows(), audit_before);
}

TEST_P(AgentsStorageTest, InvalidTelemetryIsRefusedAndWritesNothing) {
  Enroll(MakeAgent("shop-a", "agt_a", "cred-a"), "enr_a");
  Repository::TelemetryBatch batch;
  batch.successes.push_back({"shop-a", "check", "disk", kT0, ""});
  batch.agents.push_back(Telemetry("shop-a", "agt_a"));
  batch.agents.back().availability = "sideways";
  Status st = repo_->WriteTelemetry(batch);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInternal);

  Repository::TelemetryBatch bad_kind;
  bad_kind.successes.push_back({"shop-a", "deploy", "x", kT0, ""});
  st = repo_->WriteTelemetry(bad_kind);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInternal);

  EXPECT_EQ(Rows("last_successes"), 0);
  EXPECT_EQ(Agent("shop-a").availability, "never_seen");
  EXPECT_TRUE(repo_->WriteTelemetry(Repository::TelemetryBatch{}).ok());
}

TEST_P(AgentsStorageTest, DeliveriesAdvanceOpenOperationsAndLeaveFinalOnesAlone) {
  MustApply({InsertOperationEffect{MakeOperation("op_q", "shop-a")},
             InsertOperationEffect{MakeOperation("op_done", "shop-a")}});
  OperationRecord done = MakeOperation("op_done", "shop-a");
  done.state = "succeeded";
  done.result_json = R"({"flushed":[]})";
  done.finished_at_ms = kT0 + 50;
  done.version = 2;
  MustApply({UpdateOperationEffect{done, 1}});
  const long long audit_before = AuditRows();

  Repository::TelemetryBatch batch;
  batch.deliveries.push_back({"op_q", "sess-1", kT0 + 100});
  batch.deliveries.push_back({"op_done", "sess-1", kT0 + 100});
  batch.deliveries.push_back({"op_unknown", "sess-1", kT0 + 100});
  ASSERT_TRUE(repo_->WriteTelemetry(batch).ok());

  OperationRecord q = Operation("op_q");
  EXPECT_EQ(q.state, "delivered");
  EXPECT_EQ(q.delivered_at_ms, std::optional<std::int64_t>(kT0 + 100));
  EXPECT_EQ(q.delivered_session, "sess-1");
  EXPECT_EQ(q.delivery_count, 1);
  EXPECT_EQ(q.version, 2);
  ExpectSameOperation(Operation("op_done"), done);

  // Redelivery to another session.
  Repository::TelemetryBatch again;
  again.deliveries.push_back({"op_q", "sess-2", kT0 + 200});
  ASSERT_TRUE(repo_->WriteTelemetry(again).ok());
  q = Operation("op_q");
  EXPECT_EQ(q.state, "delivered");
  EXPECT_EQ(q.delivered_at_ms, std::optional<std::int64_t>(kT0 + 200));
  EXPECT_EQ(q.delivered_session, "sess-2");
  EXPECT_EQ(q.delivery_count, 2);
  EXPECT_EQ(q.version, 3);
  EXPECT_EQ(AuditRows(), audit_before);

  // The version moved under a writer holding the old one.
  OperationRecord stale = MakeOperation("op_q", "shop-a");
  stale.state = "succeeded";
  stale.version = 2;
  EXPECT_EQ(CodeOf(ApplyAudited({UpdateOperationEffect{stale, 1}})), ErrorCode::kPreconditionFailed);
}

TEST_P(AgentsStorageTest, ConcurrentTelemetryAndAuditedWritesAllCommit) {
  Enroll(MakeAgent("shop-a", "agt_a", "cred-a"), "enr_a");
  const long long audit_before = AuditRows();
  constexpr int kThreads = 8;
  constexpr int kEach = 20;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (t % 2 == 0) {
          Repository::TelemetryBatch batch;
          batch.agents.push_back(Telemetry("shop-a", "agt_a"));
          batch.agents.back().last_seen_ms = kT0 + t * 1000 + i;
          if (!repo_->WriteTelemetry(batch).ok()) ++failures[t];
        } else {
          WriteBatch batch;
          batch.effects.push_back(
              InsertOperationEffect{MakeOperation("op_" + std::to_string(t) + "_" + std::to_string(i), "shop-a")});
          batch.audit.push_back(TestAudit("operation.run.cache.flush", "store/shop-a", t * 1000 + i));
          if (!repo_->Apply(batch).ok()) ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << t;
  EXPECT_EQ(Rows("operations"), kThreads / 2 * kEach);
  EXPECT_EQ(AuditRows(), audit_before + kThreads / 2 * kEach);  // telemetry added none
  EXPECT_EQ(Agent("shop-a").availability, "online");
}

TEST_P(AgentsStorageTest, LastSeenNeverMovesBackwards) {
  // Heartbeats of one agent are flushed by several replicas (ADR 0012): an older last_seen
  // written after a newer one keeps the newer; the other fields are written as given.
  Enroll(MakeAgent("shop-a", "agt_a", "cred-a"), "enr_a");
  Repository::AgentTelemetry unseen = Telemetry("shop-a", "agt_a");
  unseen.last_seen_ms.reset();
  Repository::TelemetryBatch first;
  first.agents.push_back(unseen);
  ASSERT_TRUE(repo_->WriteTelemetry(first).ok());
  EXPECT_FALSE(Agent("shop-a").last_seen_ms.has_value()) << "absent over absent stays NULL";

  Repository::TelemetryBatch newer;
  newer.agents.push_back(Telemetry("shop-a", "agt_a"));
  newer.agents.back().last_seen_ms = kT0 + 9000;
  ASSERT_TRUE(repo_->WriteTelemetry(newer).ok());
  EXPECT_EQ(Agent("shop-a").last_seen_ms, std::optional<std::int64_t>(kT0 + 9000));

  Repository::TelemetryBatch older;
  older.agents.push_back(Telemetry("shop-a", "agt_a"));
  older.agents.back().last_seen_ms = kT0 + 4000;
  older.agents.back().availability = "stale";
  older.agents.back().health = "unhealthy";
  older.agents.back().agent_version = "1.2.0";
  ASSERT_TRUE(repo_->WriteTelemetry(older).ok());
  AgentRecord a = Agent("shop-a");
  EXPECT_EQ(a.last_seen_ms, std::optional<std::int64_t>(kT0 + 9000));
  EXPECT_EQ(a.availability, "stale");
  EXPECT_EQ(a.health, "unhealthy");
  EXPECT_EQ(a.agent_version, "1.2.0");

  Repository::TelemetryBatch later;
  later.agents.push_back(Telemetry("shop-a", "agt_a"));
  later.agents.back().last_seen_ms = kT0 + 9001;
  ASSERT_TRUE(repo_->WriteTelemetry(later).ok());
  EXPECT_EQ(Agent("shop-a").last_seen_ms, std::optional<std::int64_t>(kT0 + 9001));
}

TEST_P(AgentsStorageTest, AnOperationInsertedElsewhereWakesTheListenerWithItsStore) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one process: no notifications";
  auto first = repo_->WaitForNotifications(100);  // connects: "catch up"
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto other = OpenPostgresRepository(pg_options_);
  ASSERT_TRUE(other.ok()) << other.error().message;
  WriteBatch batch;
  batch.effects.push_back(InsertOperationEffect{MakeOperation("op_1", "shop-b")});
  batch.audit.push_back(TestAudit("operation.run.cache.flush", "store/shop-b"));
  auto applied = (*other)->Apply(batch);
  ASSERT_TRUE(applied.ok()) << applied.error().message;

  // Events may be notified too; wait (up to 5 s in all) for the operation's.
  std::optional<Notification> queued;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!queued && std::chrono::steady_clock::now() < deadline) {
    auto woken = repo_->WaitForNotifications(5000);
    ASSERT_TRUE(woken.ok()) << woken.error().message;
    for (const auto& n : *woken) {
      if (n.kind == Notification::Kind::kOperationQueued) {
        queued = n;
        break;
      }
    }
  }
  ASSERT_TRUE(queued.has_value()) << "no storeplane_operations notification";
  EXPECT_EQ(queued->payload, "shop-b");
}

// ---- persistence and upgrade ----

TEST_P(AgentsStorageTest, EverythingSurvivesCloseAndReopen) {
  Enroll(MakeAgent("shop-a", "agt_a", "cred-a"), "enr_a");
  MustApply({InsertEnrollmentTokenEffect{MakeEnrollmentToken("enr_b", "shop-b")}});
  MustApply({InsertOperationEffect{MakeOperation("op_1", "shop-a")},
             UpsertLastSuccessEffect{LastSuccess{"shop-a", "operation", "health.probe", kT0, "op_0"}}});
  Repository::TelemetryBatch telemetry;
  telemetry.agents.push_back(Telemetry("shop-a", "agt_a"));
  telemetry.deliveries.push_back({"op_1", "sess-1", kT0 + 100});
  ASSERT_TRUE(repo_->WriteTelemetry(telemetry).ok());

  Reopen();

  AgentRecord a = Agent("shop-a");
  EXPECT_EQ(a.id, "agt_a");
  EXPECT_EQ(a.availability, "online");
  EXPECT_EQ(a.allowed_operations, (std::vector<std::string>{"health.probe", "cache.flush"}));
  auto used = repo_->FindEnrollmentTokenByHash("hash-enr_a");
  ASSERT_TRUE(used.ok() && used->has_value());
  EXPECT_TRUE((*used)->used_at_ms.has_value());
  auto unused = repo_->FindEnrollmentTokenByHash("hash-enr_b");
  ASSERT_TRUE(unused.ok() && unused->has_value());
  EXPECT_FALSE((*unused)->used_at_ms.has_value());
  OperationRecord op = Operation("op_1");
  EXPECT_EQ(op.state, "delivered");
  EXPECT_EQ(op.version, 2);
  auto successes = repo_->ListLastSuccesses("shop-a");
  ASSERT_TRUE(successes.ok());
  ASSERT_EQ(successes->size(), 1u);
  EXPECT_EQ((*successes)[0].ref, "op_0");

  // Ordering continues after the reopen.
  MustApply({InsertOperationEffect{MakeOperation("op_2", "shop-a")}});
  auto list = repo_->ListOperations("shop-a", "", 10);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Ids(*list), (std::vector<std::string>{"op_2", "op_1"}));
}

INSTANTIATE_BACKENDS(AgentsStorageTest);

TEST(AgentsStorageUpgradeTest, AVersionTwoDatabaseIsMigratedAndKeepsItsData) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "v2.sqlite").string();
  {
    auto conn = Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    ASSERT_TRUE(conn.ok());
    const std::string v2 = std::string(
                               "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, "
                               "applied_at INTEGER NOT NULL);") +
                           AllMigrations()[0].sql + AllMigrations()[1].sql +
                           "INSERT INTO schema_migrations VALUES (1, 0);"
                           "INSERT INTO schema_migrations VALUES (2, 0);"
                           "INSERT INTO stores VALUES ('old-shop', 'Old Shop', 'production', 'shared', '{}', "
                           "'active', NULL, 'r1', 'r1', 3, 1, 2);"
                           "INSERT INTO principals VALUES ('admin', 'Admin', 'operator', '[\"admin\"]', 1);"
                           "INSERT INTO tokens (token_hash, principal_id, description, created_at_ms, expires_at_ms, "
                           "id, revoked_at_ms, created_by) VALUES ('hash-1', 'admin', 'bootstrap', 1, NULL, "
                           "'tok_1', NULL, 'system');";
    ASSERT_TRUE(conn->Exec(v2.c_str(), "create a version 2 database").ok());
  }
  SqliteOptions options;
  options.path = path;
  auto opened = OpenSqliteRepository(options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  Repository& repo = **opened;
  EXPECT_EQ(QueryIntRaw(path, "SELECT MAX(version) FROM schema_migrations"), LatestSchemaVersion());

  auto store = repo.GetStore("old-shop");
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(store->version, 3);
  EXPECT_EQ(store->current_release, std::optional<std::string>("r1"));
  auto token = repo.GetToken("tok_1");
  ASSERT_TRUE(token.ok() && token->has_value());
  EXPECT_EQ((*token)->created_by, "system");

  // The new tables work against the old rows.
  auto agents = repo.ListAgents();
  ASSERT_TRUE(agents.ok());
  EXPECT_TRUE(agents->empty());
  WriteBatch batch;
  batch.effects.push_back(InsertEnrollmentTokenEffect{MakeEnrollmentToken("enr_1", "old-shop")});
  batch.effects.push_back(EnrollAgentEffect{"enr_1", kT0, MakeAgent("old-shop", "agt_1", "cred-1")});
  batch.effects.push_back(InsertOperationEffect{MakeOperation("op_1", "old-shop")});
  batch.audit.push_back(TestAudit("agent.enroll", "store/old-shop"));
  auto applied = repo.Apply(batch);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  auto agent = repo.GetAgent("old-shop");
  ASSERT_TRUE(agent.ok() && agent->has_value());
  EXPECT_EQ((*agent)->id, "agt_1");
  auto open = repo.ListOpenOperations();
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(Ids(*open), (std::vector<std::string>{"op_1"}));
}

}  // namespace
}  // namespace storeplane::db
