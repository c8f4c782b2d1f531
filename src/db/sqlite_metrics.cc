// The /metrics part of SqliteRepository: counts by closed values, read at every scrape.
// Each query reads an index only (schema v5 adds the covering ones), so a scrape of
// 100,000 stores stays in milliseconds; the writer's counters come from memory.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "db/sqlite_repository_impl.h"

namespace storeplane::db {

using sqlite_detail::Guarded;

namespace {

// ---- SQL ----

// GROUP BY in the order of stores_by_group / pipeline_runs_by_kind_state: a covering
// index scan, no temporary B-tree.
constexpr const char* kCountStoresByGroup =
    "SELECT state, environment, isolation_mode, COUNT(*) FROM stores GROUP BY state, environment, isolation_mode";
constexpr const char* kCountRunsByKindState = "SELECT kind, state, COUNT(*) FROM pipeline_runs GROUP BY kind, state";
// The partial index operations_open holds exactly these rows.
constexpr const char* kCountOpenOperations =
    "SELECT state, COUNT(*) FROM operations WHERE state IN ('queued', 'delivered') GROUP BY state";
// The partial index outbox_due holds exactly these rows.
constexpr const char* kCountPendingOutbox = "SELECT COUNT(*) FROM outbox WHERE sent_at_ms IS NULL";
constexpr const char* kLastAuditSeq = "SELECT COALESCE(MAX(seq), 0) FROM audit_log";
constexpr const char* kLastCheckpointTime = "SELECT time_ms FROM audit_checkpoints ORDER BY seq DESC LIMIT 1";

}  // namespace

Result<std::vector<Repository::StoreGroupCount>> SqliteRepository::CountStoresByGroup() {
  return Guarded([&]() -> Result<std::vector<StoreGroupCount>> {
    constexpr std::string_view kWhat = "count stores by group";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kCountStoresByGroup, kWhat);
    if (!select.ok()) return select.error();
    std::vector<StoreGroupCount> groups;
    while (true) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      groups.push_back({select->ColumnText(0), select->ColumnText(1), select->ColumnText(2), select->ColumnInt64(3)});
    }
    return groups;
  });
}

Result<std::vector<Repository::RunGroupCount>> SqliteRepository::CountRunsByKindState() {
  return Guarded([&]() -> Result<std::vector<RunGroupCount>> {
    constexpr std::string_view kWhat = "count runs by kind and state";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kCountRunsByKindState, kWhat);
    if (!select.ok()) return select.error();
    std::vector<RunGroupCount> groups;
    while (true) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      groups.push_back({select->ColumnText(0), select->ColumnText(1), select->ColumnInt64(2)});
    }
    return groups;
  });
}

Result<std::vector<std::pair<std::string, std::int64_t>>> SqliteRepository::CountOpenOperationsByState() {
  return Guarded([&]() -> Result<std::vector<std::pair<std::string, std::int64_t>>> {
    constexpr std::string_view kWhat = "count open operations by state";
    auto conn = readers_->Acquire();
    auto select = conn->Prepare(kCountOpenOperations, kWhat);
    if (!select.ok()) return select.error();
    std::vector<std::pair<std::string, std::int64_t>> counts;
    while (true) {
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (!*row) break;
      counts.emplace_back(select->ColumnText(0), select->ColumnInt64(1));
    }
    return counts;
  });
}

Result<std::int64_t> SqliteRepository::CountPendingOutbox() {
  return Count(kCountPendingOutbox, "count pending outbox entries");
}

Result<Repository::AuditHead> SqliteRepository::GetAuditHead() {
  return Guarded([&]() -> Result<AuditHead> {
    constexpr std::string_view kWhat = "read the audit head";
    auto conn = readers_->Acquire();
    AuditHead head;
    {
      auto select = conn->Prepare(kLastAuditSeq, kWhat);
      if (!select.ok()) return select.error();
      auto row = select->Step(kWhat);
      if (!row.ok()) return row.error();
      if (*row) head.last_seq = select->ColumnInt64(0);
    }
    auto select = conn->Prepare(kLastCheckpointTime, kWhat);
    if (!select.ok()) return select.error();
    auto row = select->Step(kWhat);
    if (!row.ok()) return row.error();
    if (*row) head.last_checkpoint_ms = select->ColumnInt64(0);
    return head;
  });
}

Repository::WriterStats SqliteRepository::GetWriterStats() {
  const auto stats = writer_->stats();
  return WriterStats{stats.batches, stats.mutations, stats.failed_batches, stats.pending};
}

}  // namespace storeplane::db
