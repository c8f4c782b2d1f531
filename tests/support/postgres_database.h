// Test support: a fresh, empty PostgreSQL database per test, on one server the whole run
// shares. The server is $STOREPLANE_TEST_POSTGRES when set (libpq keywords without dbname,
// e.g. "host=127.0.0.1 port=5433 user=postgres"; scripts/test.sh starts one with
// scripts/test-postgres.sh), else a throwaway cluster (postgres_process.h) that this test
// process starts on first use and stops at exit.
#pragma once

#include <string>

namespace storeplane::testing {

// Whether a PostgreSQL is at hand: the variable is set, or the server binaries are installed.
bool PostgresAvailable();

// Creates a database with a new unique name and returns a libpq connection string for it
// ("" and `*error` on failure). Databases are left behind: the server is thrown away.
std::string FreshPostgresDatabase(std::string* error);

}  // namespace storeplane::testing
