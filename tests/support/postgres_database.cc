#include "tests/support/postgres_database.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "tests/support/postgres_process.h"

namespace storeplane::testing {
namespace {

std::string SharedServer() {
  const char* env = std::getenv("STOREPLANE_TEST_POSTGRES");
  return env != nullptr ? env : "";
}

// The process-wide cluster when no shared server is named; stopped by its destructor at exit.
std::mutex cluster_mu;
std::unique_ptr<PostgresProcess> cluster;

// libpq keywords of the server without dbname, or "" and *error.
std::string ServerKeywords(std::string* error) {
  if (auto shared = SharedServer(); !shared.empty()) return shared;
  std::lock_guard lock(cluster_mu);
  if (!cluster) {
    auto started = std::make_unique<PostgresProcess>();
    if (!started->Start()) {
      *error = "cannot start a PostgreSQL cluster: " + started->error();
      return "";
    }
    cluster = std::move(started);
  }
  return "host=127.0.0.1 port=" + std::to_string(cluster->port()) + " user=postgres connect_timeout=10";
}

}  // namespace

bool PostgresAvailable() { return !SharedServer().empty() || PostgresInstalled(); }

std::string FreshPostgresDatabase(std::string* error) {
  static std::atomic<int> counter{0};
  const std::string server = ServerKeywords(error);
  if (server.empty()) return "";
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  const std::string name = "t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
                           std::to_string(static_cast<unsigned long long>(now) % 1000000007ULL);
  PGconn* admin = PQconnectdb((server + " dbname=postgres").c_str());
  if (PQstatus(admin) != CONNECTION_OK) {
    *error = std::string("cannot connect to the test PostgreSQL: ") + PQerrorMessage(admin);
    PQfinish(admin);
    return "";
  }
  PGresult* result = PQexec(admin, ("CREATE DATABASE " + name).c_str());
  const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  if (!ok) *error = std::string("cannot create a test database: ") + PQerrorMessage(admin);
  PQclear(result);
  PQfinish(admin);
  return ok ? server + " dbname=" + name : "";
}

}  // namespace storeplane::testing
