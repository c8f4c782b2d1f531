#include "db/sqlite_handle.h"

#include <gtest/gtest.h>

#include <string>

#include "db_test_util.h"

namespace storeplane::db {
namespace {

class SqliteHandleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto conn = Connection::Open((dir_.path() / "h.sqlite").string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
    ASSERT_TRUE(conn.ok());
    conn_ = std::move(*conn);
    ASSERT_TRUE(conn_.Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER CHECK (v >= 0))", "create").ok());
  }

  Status Insert(std::string_view key, std::int64_t value) {
    auto stmt = conn_.Prepare("INSERT INTO t (k, v) VALUES (?1, ?2)", "insert");
    if (!stmt.ok()) return stmt.error();
    stmt->Bind(1, key).Bind(2, value);
    return stmt->Run("insert");
  }

  testing::TempDir dir_;
  Connection conn_;
};

TEST_F(SqliteHandleTest, CachedStatementsComeBackResetAndUnbound) {
  ASSERT_TRUE(Insert("a", 1).ok());
  ASSERT_TRUE(Insert("b", 2).ok());  // the same statement again, from the cache
  auto select = conn_.Prepare("SELECT v FROM t WHERE k = ?1", "select");
  ASSERT_TRUE(select.ok());
  select->Bind(1, std::string_view("b"));
  auto row = select->Step("select");
  ASSERT_TRUE(row.ok());
  ASSERT_TRUE(*row);
  EXPECT_EQ(select->ColumnInt64(0), 2);
}

TEST_F(SqliteHandleTest, SameSqlCanBeInUseTwiceAtOnce) {
  ASSERT_TRUE(Insert("a", 1).ok());
  ASSERT_TRUE(Insert("b", 2).ok());
  const char* kAll = "SELECT k FROM t ORDER BY k";
  auto outer = conn_.Prepare(kAll, "outer");
  ASSERT_TRUE(outer.ok());
  ASSERT_TRUE(*outer->Step("outer"));
  auto inner = conn_.Prepare(kAll, "inner");
  ASSERT_TRUE(inner.ok());
  ASSERT_TRUE(*inner->Step("inner"));
  EXPECT_EQ(outer->ColumnText(0), "a");
  EXPECT_EQ(inner->ColumnText(0), "a");
  ASSERT_TRUE(*outer->Step("outer"));
  EXPECT_EQ(outer->ColumnText(0), "b");
}

// ---- errors ----

TEST_F(SqliteHandleTest, ConstraintViolationsMapToAlreadyExistsAndConflict) {
  ASSERT_TRUE(Insert("a", 1).ok());
  Status duplicate = Insert("a", 2);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kAlreadyExists);
  Status check = Insert("c", -1);
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().code, ErrorCode::kConflict);
}

TEST_F(SqliteHandleTest, BadSqlIsInternalAndSafe) {
  auto stmt = conn_.Prepare("SELEKT nonsense", "read thing");
  ASSERT_FALSE(stmt.ok());
  EXPECT_EQ(stmt.error().code, ErrorCode::kInternal);
  EXPECT_EQ(stmt.error().message.find("SELEKT"), std::string::npos);  // no SQL in messages
}

TEST(SqliteErrorTest, OperationalErrorsAreUnavailable) {
  for (int rc : {SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_IOERR_FSYNC, SQLITE_FULL, SQLITE_CANTOPEN,
                 SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_NOMEM, SQLITE_BUSY_SNAPSHOT}) {
    EXPECT_EQ(SqliteError(rc, "op").code, ErrorCode::kUnavailable) << rc;
  }
  EXPECT_EQ(SqliteError(SQLITE_CONSTRAINT_PRIMARYKEY, "op").code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(SqliteError(SQLITE_CONSTRAINT_FOREIGNKEY, "op").code, ErrorCode::kConflict);
  EXPECT_EQ(SqliteError(SQLITE_MISUSE, "op").code, ErrorCode::kInternal);
}

TEST(ReadPoolTest, LeasesAreExclusiveAndReturned) {
  testing::TempDir dir;
  std::vector<Connection> conns;
  auto conn = Connection::Open((dir.path() / "p.sqlite").string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 100);
  ASSERT_TRUE(conn.ok());
  conns.push_back(std::move(*conn));
  ReadPool pool(std::move(conns));
  Connection* first = nullptr;
  {
    auto lease = pool.Acquire();
    first = &*lease;
  }
  auto again = pool.Acquire();  // would block forever if the first lease was not returned
  EXPECT_EQ(&*again, first);
}

}  // namespace
}  // namespace storeplane::db
