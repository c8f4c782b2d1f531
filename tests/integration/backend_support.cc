#include "tests/integration/backend_support.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/postgres_database.h"
#include "tests/support/postgres_process.h"
#include "tests/support/server_process.h"

namespace storeplane::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `text` as one single-quoted shell word.
std::string ShellQuoted(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// The suite on PostgreSQL without a PostgreSQL at hand (no STOREPLANE_TEST_POSTGRES and no
// server binaries): every test skips, unless PostgreSQL is required (scripts/test.sh): then
// the tests run and fail at the server's start (a skip message would make ctest report a
// skip whatever the exit code: gtest_discover_tests' SKIP_REGULAR_EXPRESSION).
class BackendEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!TestBackendIsPostgres() || PostgresAvailable() || PostgresRequired()) return;
    GTEST_SKIP() << "STOREPLANE_TEST_BACKEND=postgres, but no PostgreSQL (set STOREPLANE_TEST_POSTGRES or install "
                    "postgresql)";
  }
};

[[maybe_unused]] ::testing::Environment* const kBackendEnvironment =
    ::testing::AddGlobalTestEnvironment(new BackendEnvironment);

}  // namespace

SqlRun RunPostgresSql(const std::string& conninfo, const std::string& sql) {
  SqlRun run;
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    run.output = std::string("cannot connect: ") + PQerrorMessage(conn);
    PQfinish(conn);
    return run;
  }
  PGresult* result = PQexec(conn, sql.c_str());
  const auto status = PQresultStatus(result);
  run.ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  if (!run.ok) run.output = PQerrorMessage(conn);
  if (status == PGRES_TUPLES_OK) {
    for (int r = 0; r < PQntuples(result); ++r) {
      std::vector<std::string> row;
      for (int c = 0; c < PQnfields(result); ++c) row.emplace_back(PQgetvalue(result, r, c));
      run.rows.push_back(std::move(row));
    }
  }
  PQclear(result);
  PQfinish(conn);
  return run;
}

SqlRun RunSqliteSql(const std::string& path, const std::string& sql) {
  SqlRun run;
  const auto out_path = fs::temp_directory_path() / ("storeplane-sql-" + std::to_string(::getpid()) + ".out");
  const auto command = "sqlite3 " + ShellQuoted(path) + " " + ShellQuoted(sql) + " >" + out_path.string() + " 2>&1";
  const int status = std::system(command.c_str());
  run.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  run.output = ReadAll(out_path);
  fs::remove(out_path);
  return run;
}

std::string DumpPostgresDatabase(const std::string& conninfo) {
  auto tables = RunPostgresSql(conninfo,
                               "SELECT quote_ident(table_name) FROM information_schema.tables "
                               "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name");
  if (!tables.ok) return "cannot list the tables: " + tables.output;
  std::string dump;
  for (const auto& table : tables.rows) {
    auto rows = RunPostgresSql(conninfo, "SELECT t::text FROM " + table[0] + " t");
    dump += "-- " + table[0] + "\n";
    if (!rows.ok) dump += "cannot read: " + rows.output + "\n";
    for (const auto& row : rows.rows) dump += row[0] + "\n";
  }
  return dump;
}

std::string EverythingAtRest(const std::string& data_dir, const std::vector<std::string>& except) {
  std::string all;
  for (const auto& entry : fs::directory_iterator(data_dir)) {
    const auto name = entry.path().filename().string();
    if (std::find(except.begin(), except.end(), name) != except.end()) continue;
    all += ReadAll(entry.path());
  }
  if (TestBackendIsPostgres()) {
    const auto conninfo = PostgresConninfoFor(data_dir);
    all += conninfo.empty() ? "no PostgreSQL database for " + data_dir : DumpPostgresDatabase(conninfo);
  }
  return all;
}

}  // namespace storeplane::testing
