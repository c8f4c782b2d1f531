// A throwaway PostgreSQL cluster (tests/support/postgres_process.h) from Debian's
// postgresql package, driven with libpq: the groundwork for storage on PostgreSQL. Without
// the server binaries these tests skip, or fail when STOREPLANE_REQUIRE_POSTGRES is set
// (scripts/test.sh sets it).
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/postgres_process.h"

namespace storeplane::testing {
namespace {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Result = std::unique_ptr<PGresult, ResultDeleter>;

class PostgresSmokeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresInstalled()) {
      if (PostgresRequired()) {
        FAIL() << "the PostgreSQL server binaries (initdb, postgres) are not installed (Debian: apt-get install "
                  "postgresql), and STOREPLANE_REQUIRE_POSTGRES is set";
      }
      GTEST_SKIP() << "the PostgreSQL server binaries (initdb, postgres) are not installed; set "
                      "STOREPLANE_REQUIRE_POSTGRES=1 to make this a failure";
    }
    const auto started = std::chrono::steady_clock::now();
    pg_ = std::make_unique<PostgresProcess>();
    ASSERT_TRUE(pg_->Start()) << pg_->error();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    RecordProperty("cluster_start_ms", std::to_string(ms));
    std::printf("[ info     ] cluster started in %lld ms (%s)\n", static_cast<long long>(ms), pg_->conninfo().c_str());
  }

  void TearDown() override {
    if (pg_) pg_->Stop();  // also on failure: never left running
  }

  Conn Connect() {
    Conn conn(PQconnectdb(pg_->conninfo().c_str()));
    EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    return conn;
  }

  static Result Exec(PGconn* conn, const std::string& sql) { return Result(PQexec(conn, sql.c_str())); }

  std::unique_ptr<PostgresProcess> pg_;
};

TEST_F(PostgresSmokeTest, CreatesATableAndReadsARowBack) {
  Conn conn = Connect();
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK);
  EXPECT_GE(PQserverVersion(conn.get()), 150000) << "want PostgreSQL 15 or newer";
  EXPECT_STREQ(PQdb(conn.get()), "storeplane_test");

  auto res = Exec(conn.get(), "CREATE TABLE stores (id text PRIMARY KEY, environment text NOT NULL, n integer)");
  ASSERT_EQ(PQresultStatus(res.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(res.get());

  const char* params[] = {"shop-eu-1", "production", "42"};
  res.reset(PQexecParams(conn.get(), "INSERT INTO stores (id, environment, n) VALUES ($1, $2, $3::integer)", 3, nullptr,
                         params, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(res.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(res.get());
  EXPECT_STREQ(PQcmdTuples(res.get()), "1");

  res = Exec(conn.get(), "SELECT id, environment, n FROM stores");
  ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(res.get());
  ASSERT_EQ(PQntuples(res.get()), 1);
  EXPECT_STREQ(PQgetvalue(res.get(), 0, 0), "shop-eu-1");
  EXPECT_STREQ(PQgetvalue(res.get(), 0, 1), "production");
  EXPECT_STREQ(PQgetvalue(res.get(), 0, 2), "42");

  // The Unix socket in the cluster's directory works too.
  Conn local(PQconnectdb(
      ("host=" + pg_->socket_dir() + " port=" + std::to_string(pg_->port()) + " dbname=storeplane_test user=postgres")
          .c_str()));
  ASSERT_EQ(PQstatus(local.get()), CONNECTION_OK) << PQerrorMessage(local.get());
  res = Exec(local.get(), "SELECT count(*) FROM stores");
  ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(res.get());
  EXPECT_STREQ(PQgetvalue(res.get(), 0, 0), "1");
}

TEST_F(PostgresSmokeTest, StopEndsTheServerAndRemovesItsDirectory) {
  const std::string dir = pg_->dir();
  const std::string conninfo = pg_->conninfo();
  ASSERT_TRUE(std::filesystem::exists(dir + "/data/PG_VERSION"));
  {
    Conn open_client = Connect();  // a client still connected must not hold up the shutdown
    pg_->Stop();
  }
  EXPECT_FALSE(pg_->running());
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_EQ(PQping(conninfo.c_str()), PQPING_NO_RESPONSE);
  pg_->Stop();  // twice is fine
}

}  // namespace
}  // namespace storeplane::testing
