// The integration tests' view of the database behind the server, on either back end (see
// support/server_process.h: STOREPLANE_TEST_BACKEND=postgres runs every server on a database
// of its own): running SQL behind the server's back (the sqlite3 tool on the SQLite file, or
// libpq on the PostgreSQL database), and everything the installation holds at rest (the
// files of the data directory, plus every row of the PostgreSQL database), for the tests
// that look for leaked secrets.
#pragma once

#include <string>
#include <vector>

namespace storeplane::testing {

struct SqlRun {
  bool ok = false;
  std::string output;                          // SQLite: the tool's stdout and stderr; PostgreSQL: the error message
  std::vector<std::vector<std::string>> rows;  // PostgreSQL only: the last statement's rows (NULL as "")
};

// Runs `sql` (one or more statements) on the PostgreSQL database at `conninfo`, in one
// transaction when there are several (libpq's simple query protocol).
SqlRun RunPostgresSql(const std::string& conninfo, const std::string& sql);

// Runs `sql` on the SQLite database file at `path` with the sqlite3 tool.
SqlRun RunSqliteSql(const std::string& path, const std::string& sql);

// Every row of every table of the database's public schema, as text (one row a line).
std::string DumpPostgresDatabase(const std::string& conninfo);

// The installation at rest: the contents of the data directory's files (but those named in
// `except`), followed, on PostgreSQL, by DumpPostgresDatabase of the server's database.
std::string EverythingAtRest(const std::string& data_dir, const std::vector<std::string>& except = {});

}  // namespace storeplane::testing
