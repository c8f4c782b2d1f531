// Test support: runs the real storeplaned binary as a child process on a loopback port
// chosen by the kernel (port 0), reads the address and admin token it prints, and stops
// it with SIGTERM or SIGKILL. Used by the integration and CLI tests.
//
// The back end: SQLite in the data directory, unless the environment variable
// STOREPLANE_TEST_BACKEND is "postgres" (ctest's "postgres/" registration of the integration
// suite sets it). Then every server with a data_dir (not --dev, and whose test did not set
// STOREPLANE_STORAGE_DRIVER itself in ServerOptions::env) runs on PostgreSQL: a fresh
// database per data directory on the test server (postgres_database.h), passed as
// STOREPLANE_STORAGE_DRIVER=postgres and STOREPLANE_POSTGRES_CONNINFO. The database is kept
// for that data directory for the life of the test process, so a restart of the same
// installation (same data_dir) finds its data again, as it would in the SQLite file; a data
// directory that is missing or empty at Start() is a new installation and gets a new one.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace storeplane::testing {

// A fresh temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ServerOptions {
  std::string data_dir;                 // --data-dir; required unless dev
  bool dev = false;                     // --dev (throw-away instance)
  std::vector<std::string> extra_args;  // appended to the command line
  std::vector<std::string> env;         // extra "NAME=value" entries
};

// Whether the servers of this test process run on PostgreSQL (STOREPLANE_TEST_BACKEND=postgres).
bool TestBackendIsPostgres();
// The libpq connection string of the database behind the server started on `data_dir`, for
// tests that look at (or tamper with) the database behind the server's back; "" when no
// server on PostgreSQL was started there.
std::string PostgresConninfoFor(const std::string& data_dir);

// Writes a self-signed certificate for 127.0.0.1 (and its key) with the openssl tool, for
// TLS tests. False when openssl fails.
bool MakeTestCertificate(const std::string& cert_path, const std::string& key_path);

class ServerProcess {
 public:
  // Path of the storeplaned binary under test (from the STOREPLANED_BIN compile definition
  // or the environment variable of the same name).
  static std::string BinaryPath();

  explicit ServerProcess(ServerOptions options);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the binary and waits (up to 30 s) for the "STOREPLANE_ADDR=" line on stdout.
  // The "STOREPLANE_TOKEN=" line, printed on a first start and in --dev, is captured too.
  // Returns false (and fills error()) if the process exits or times out first.
  bool Start();
  // SIGTERM and wait; returns the exit status (as from waitpid's WEXITSTATUS), or -1.
  int Stop();
  // SIGKILL and wait.
  void Kill();
  // Sends `signal` (e.g. SIGHUP) without waiting.
  void SendSignal(int signal);
  // Whether the process has ended by itself (without waiting): when it has, reaps it, fills
  // `status` (waitpid's) and from then on running() is false.
  bool Exited(int* status = nullptr);
  bool running() const { return pid_ > 0; }

  const std::string& url() const { return url_; }      // e.g. http://127.0.0.1:41234
  const std::string& token() const { return token_; }  // empty unless printed this start
  const std::string& error() const { return error_; }
  // Everything the process wrote to stderr so far (its logs), for assertions and failures.
  std::string Logs() const;

 private:
  ServerOptions options_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stderr_path_;
  std::string url_;
  std::string token_;
  std::string error_;
};

}  // namespace storeplane::testing
