// Test support: a throwaway PostgreSQL cluster from Debian's postgresql package (the
// server binaries in /usr/lib/postgresql/<version>/bin). initdb into a fresh temporary
// directory (trust authentication, fsync off), the postmaster as a child listening on
// 127.0.0.1 at a free port and on a Unix socket in that directory, one database created;
// stopped (fast shutdown, then SIGKILL) and the directory removed by Stop() or the
// destructor. PostgreSQL refuses to run as root: when the tests run as root, initdb and
// postgres run as the `postgres` system user (which the package creates).
#pragma once

#include <sys/types.h>

#include <string>

namespace storeplane::testing {

// The directory holding initdb and postgres: $STOREPLANE_POSTGRES_BINDIR when set, else
// the newest /usr/lib/postgresql/<version>/bin that has both, else the directory of
// `initdb` on PATH when `postgres` is there too; "" when none is found.
std::string PostgresBinDir();
bool PostgresInstalled();
// Whether a missing PostgreSQL must fail the tests instead of skipping them: the
// environment variable STOREPLANE_REQUIRE_POSTGRES is set to anything but "" or "0"
// (scripts/test.sh sets it, so CI never silently skips).
bool PostgresRequired();

class PostgresProcess {
 public:
  // `database`: created once the server is up; conninfo() names it.
  explicit PostgresProcess(std::string database = "storeplane_test");
  ~PostgresProcess();  // Stop()
  PostgresProcess(const PostgresProcess&) = delete;
  PostgresProcess& operator=(const PostgresProcess&) = delete;

  // initdb, start, wait (up to 60 s) until PQping says the server accepts connections,
  // create the database. Call it from a thread that outlives the cluster (the test's own):
  // the server gets SIGINT when the thread that started it ends, so that a killed test does
  // not leave it running (PR_SET_PDEATHSIG). Takes about 0.6 s on an idle machine (initdb
  // is most of it). Retries on another port when the one picked was taken. False
  // (and error() with the log's tail) on failure; whatever was started is cleaned up.
  bool Start();
  // Fast shutdown (SIGINT; SIGKILL after 15 s), then removes the directory. Safe to call
  // twice.
  void Stop();
  bool running() const { return pid_ > 0; }

  // A libpq connection string for the database over TCP, e.g.
  // "host=127.0.0.1 port=41234 dbname=storeplane_test user=postgres connect_timeout=10".
  std::string conninfo() const;
  // The same with another database name (e.g. "postgres").
  std::string conninfo(const std::string& database) const;
  int port() const { return port_; }
  const std::string& socket_dir() const { return dir_; }  // the Unix socket's directory
  const std::string& dir() const { return dir_; }         // data/ and postgres.log are under it
  const std::string& error() const { return error_; }
  std::string Logs() const;

 private:
  bool StartOnce(bool* port_taken);
  void RemoveDir();

  std::string database_;
  std::string dir_;
  std::string bindir_;
  pid_t pid_ = -1;
  int port_ = 0;
  uid_t run_uid_ = static_cast<uid_t>(-1);
  gid_t run_gid_ = static_cast<gid_t>(-1);
  std::string error_;
};

}  // namespace storeplane::testing
