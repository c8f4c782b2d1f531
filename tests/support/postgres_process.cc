#include "tests/support/postgres_process.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "tests/support/child_process.h"

namespace storeplane::testing {
namespace {

namespace fs = std::filesystem;

bool HasServerBinaries(const fs::path& dir) {
  return ::access((dir / "initdb").c_str(), X_OK) == 0 && ::access((dir / "postgres").c_str(), X_OK) == 0;
}

// Every ancestor of `path` is searchable by others (o+x), so another user can reach it.
bool ReachableByOthers(const fs::path& path) {
  for (fs::path p = fs::absolute(path); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    if (p == p.root_path()) break;
  }
  return true;
}

}  // namespace

std::string PostgresBinDir() {
  if (const char* env = std::getenv("STOREPLANE_POSTGRES_BINDIR"); env != nullptr && *env != '\0') {
    return HasServerBinaries(env) ? env : "";
  }
  // Debian: /usr/lib/postgresql/<major>/bin; the newest major version wins.
  std::error_code ec;
  int best_version = -1;
  std::string best;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    const int version = std::atoi(name.c_str());
    if (version > best_version && HasServerBinaries(entry.path() / "bin")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (!best.empty()) return best;
  const std::string initdb = FindOnPath("initdb");
  if (!initdb.empty()) {
    const fs::path dir = fs::path(initdb).parent_path();
    if (HasServerBinaries(dir)) return dir.string();
  }
  return "";
}

bool PostgresInstalled() { return !PostgresBinDir().empty(); }

bool PostgresRequired() { return EnvFlagSet("STOREPLANE_REQUIRE_POSTGRES"); }

PostgresProcess::PostgresProcess(std::string database) : database_(std::move(database)) {}

PostgresProcess::~PostgresProcess() { Stop(); }

std::string PostgresProcess::conninfo() const { return conninfo(database_); }

std::string PostgresProcess::conninfo(const std::string& database) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + database + " user=postgres connect_timeout=10";
}

std::string PostgresProcess::Logs() const {
  return "--- initdb.log\n" + ReadWholeFile(dir_ + "/initdb.log") + "--- postgres.log\n" +
         ReadWholeFile(dir_ + "/postgres.log");
}

bool PostgresProcess::Start() {
  error_.clear();
  if (pid_ > 0) {
    error_ = "already running";
    return false;
  }
  bindir_ = PostgresBinDir();
  if (bindir_.empty()) {
    error_ = "PostgreSQL server binaries not found (Debian: apt-get install postgresql)";
    return false;
  }
  // PostgreSQL refuses to run as root: run it as the package's `postgres` user then.
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      error_ = "running as root and there is no `postgres` user to run PostgreSQL as";
      return false;
    }
    run_uid_ = pw->pw_uid;
    run_gid_ = pw->pw_gid;
  }
  // The directory: under $TMPDIR, or /tmp when the postgres user could not reach that.
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  if (ec || (run_uid_ != static_cast<uid_t>(-1) && !ReachableByOthers(base))) base = "/tmp";
  std::string templ = (base / "storeplane-pg-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    error_ = "mkdtemp failed under " + base.string();
    return false;
  }
  dir_ = templ;
  if (run_uid_ != static_cast<uid_t>(-1) && ::chown(dir_.c_str(), run_uid_, run_gid_) != 0) {
    error_ = "cannot chown " + dir_ + " to the postgres user";
    RemoveDir();
    return false;
  }

  ChildSpec initdb;
  initdb.argv = {bindir_ + "/initdb",   "--pgdata=" + dir_ + "/data",
                 "--username=postgres", "--auth=trust",
                 "--encoding=UTF8",     "--locale=C",
                 "--no-sync",           "--no-instructions"};
  initdb.log_path = dir_ + "/initdb.log";
  initdb.cwd = dir_;
  initdb.uid = run_uid_;
  initdb.gid = run_gid_;
  const ChildRun init = RunChild(initdb, std::chrono::seconds(120));
  if (init.exit_status != 0) {
    error_ = "initdb failed (exit " + std::to_string(init.exit_status) + "):\n" + Tail(init.output, 4000);
    RemoveDir();
    return false;
  }
  for (int attempt = 1; attempt <= 3; ++attempt) {
    bool port_taken = false;
    if (StartOnce(&port_taken)) return true;
    if (!port_taken) break;
  }
  const std::string failure = error_;
  Stop();
  error_ = failure;
  return false;
}

bool PostgresProcess::StartOnce(bool* port_taken) {
  *port_taken = false;
  port_ = FreeLoopbackPort();
  if (port_ == 0) {
    error_ = "no free loopback port";
    return false;
  }
  const std::string log_path = dir_ + "/postgres.log";
  const std::size_t log_offset = ReadWholeFile(log_path).size();
  ChildSpec server;
  server.argv = {bindir_ + "/postgres",
                 "-D",
                 dir_ + "/data",
                 "-p",
                 std::to_string(port_),
                 "-c",
                 "listen_addresses=127.0.0.1",
                 "-c",
                 "unix_socket_directories=" + dir_,
                 "-c",
                 "fsync=off",
                 "-c",
                 "synchronous_commit=off",
                 "-c",
                 "full_page_writes=off",
                 "-c",
                 "max_connections=50",
                 "-c",
                 "shared_buffers=16MB"};
  server.log_path = log_path;
  server.cwd = dir_;
  server.uid = run_uid_;
  server.gid = run_gid_;
  server.parent_death_signal = SIGINT;  // a killed test does not leave the server running
  std::string spawn_error;
  pid_ = SpawnChild(server, &spawn_error);
  if (pid_ < 0) {
    error_ = "cannot start postgres: " + spawn_error;
    return false;
  }
  const std::string admin = conninfo("postgres");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool up = false;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (WaitForExit(pid_, &status, std::chrono::milliseconds(0))) {
      pid_ = -1;
      const std::string log = ReadWholeFile(log_path).substr(log_offset);
      *port_taken =
          log.find("could not bind") != std::string::npos || log.find("Address already in use") != std::string::npos;
      error_ = "postgres exited during start; log:\n" + Tail(log, 4000);
      return false;
    }
    if (PQping(admin.c_str()) == PQPING_OK) {
      up = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!up) {
    error_ = "postgres did not accept connections within 60 s; log:\n" + Tail(Logs(), 4000);
    return false;
  }
  PGconn* conn = PQconnectdb(admin.c_str());
  std::string sql_error;
  if (PQstatus(conn) != CONNECTION_OK) {
    sql_error = PQerrorMessage(conn);
  } else {
    char* quoted = PQescapeIdentifier(conn, database_.c_str(), database_.size());
    PGresult* res = PQexec(conn, ("CREATE DATABASE " + std::string(quoted != nullptr ? quoted : "")).c_str());
    if (PQresultStatus(res) != PGRES_COMMAND_OK) sql_error = PQresultErrorMessage(res);
    PQclear(res);
    PQfreemem(quoted);
  }
  PQfinish(conn);
  if (!sql_error.empty()) {
    error_ = "cannot create database " + database_ + ": " + sql_error;
    return false;
  }
  return true;
}

void PostgresProcess::Stop() {
  if (pid_ > 0) {
    // SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
    StopChild(pid_, SIGINT, std::chrono::seconds(15));
    pid_ = -1;
  }
  RemoveDir();
}

void PostgresProcess::RemoveDir() {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
  dir_.clear();
}

}  // namespace storeplane::testing
