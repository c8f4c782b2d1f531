// Server configuration: defaults, then a YAML file, then STOREPLANE_* environment
// variables, then command-line flags (each layer overrides the one before).
// Validation happens once, at start; a bad configuration stops the server.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cicd/provider.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::server {

struct TlsConfig {
  std::string cert_file;  // PEM; TLS is on when both files are set
  std::string key_file;
  bool enabled() const { return !cert_file.empty() && !key_file.empty(); }
};

struct LimitsConfig {
  std::size_t body_bytes = 1 << 20;      // 413 above this
  std::size_t header_bytes = 16 * 1024;  // 431 above this
  int read_timeout_ms = 10'000;          // a request must arrive whole within this
  int idle_timeout_ms = 60'000;          // keep-alive connections idle longer are closed
  int max_in_flight = 1024;              // 429 above this many requests being handled
  double principal_rps = 1000;           // per-principal sustained requests/s
  double principal_burst = 2000;         // per-principal burst
  int shutdown_grace_ms = 10'000;        // SIGTERM: time given to in-flight requests
};

struct StorageConfig {
  std::string driver = "sqlite";  // "sqlite" (one process) | "postgres" (replicas, ADR 0012)
  std::string sqlite_path;        // default <data_dir>/storeplane.db
  bool group_commit = true;
  int read_connections = 4;
  // PostgreSQL: the libpq connection string comes from STOREPLANE_POSTGRES_CONNINFO, else from
  // the file named here (or STOREPLANE_POSTGRES_CONNINFO_FILE); never from the YAML itself,
  // and never logged.
  std::string postgres_conninfo_file;
  std::string postgres_conninfo;  // filled from the environment or the file, at start
  int postgres_pool_size = 16;
  // Apply pending schema migrations at start. Off by default: run `storeplaned migrate`
  // once per upgrade, before starting the new replicas. An empty database is always set up.
  bool postgres_migrate_on_start = false;
};

// Replicas (PostgreSQL only): this process's name and the leader lease (ADR 0012).
struct ReplicaConfig {
  std::string name;       // default: host name + a digest of data_dir, kept across restarts
  int lease_ms = 10'000;  // a leader that stops renewing is replaced within this
  int renew_ms = 3'000;   // how often the lease is renewed (and others try to take it)
  int margin_ms = 2'000;  // the leader stops leader work this long before its lease ends
};

struct AuditConfig {
  // Ed25519 private key (PKCS#8 PEM) that signs checkpoints. Empty: <data_dir>/audit-signing.key,
  // created (0600) on first start. Never stored in the database.
  std::string signing_key_file;
  int checkpoint_every_records = 1000;
  int checkpoint_every_ms = 60'000;
  bool record_reads = true;  // allowed reads are audited too (queued, not awaited)
};

struct AgentsConfig {
  int heartbeat_interval_s = 10;  // sent to agents; loss is detected within 3 intervals
  int flush_interval_ms = 5'000;  // heartbeat telemetry is written in batches this often
  double rps = 20;                // per-agent sustained requests/s
  double burst = 40;              // per-agent burst
};

// The live event stream (/v1/events).
struct EventsConfig {
  int buffer = 10'000;        // recent events kept for resuming with Last-Event-ID
  int max_streams = 256;      // open streams at once; more are refused with 429
  int keepalive_ms = 15'000;  // a comment line this often keeps proxies from closing idle streams
  int retention_s = 86'400;   // PostgreSQL: the shared event log keeps events this long
};

// One CI/CD provider instance and the secrets its callbacks are signed with (the current
// one, and the previous one while it is being rotated), read from files or the environment.
struct CicdProviderEntry {
  cicd::ProviderConfig provider;  // provider.name is the key in /hooks/cicd/{name}
  std::string callback_secret_file;
  std::string callback_secret_env;
  std::string callback_previous_secret_file;
  // Triggers sent to this provider per minute at most (a token bucket of one minute's
  // worth); 0 = unlimited. Triggers over the rate wait in the outbox; rollouts start fewer runs.
  int max_triggers_per_minute = 0;
};

// Which provider runs which kinds in which environments; the first matching route wins.
// Empty sets match everything.
struct CicdRoute {
  std::set<std::string> environments;
  std::set<std::string> kinds;
  std::string provider;
};

struct CicdConfig {
  std::string public_url;  // how pipelines reach storeplaned's callbacks; empty = the listen URL
  std::vector<CicdProviderEntry> providers;
  std::vector<CicdRoute> routes;
  int run_timeout_s = 3600;       // no outcome by then: timed_out
  int poll_interval_s = 30;       // how often runs without news are looked up at the provider
  int gate_consecutive = 3;       // healthy heartbeats with the new release that verify a run
  int gate_window_s = 300;        // ... within this long after the pipeline succeeded
  int trigger_retry_max_s = 300;  // cap of the outbox's backoff
};

struct Config {
  std::string listen = "127.0.0.1:8750";  // host:port; port 0 picks a free port
  std::string data_dir;                   // required unless --dev
  core::EnvironmentSet environments;
  TlsConfig tls;
  LimitsConfig limits;
  StorageConfig storage;
  ReplicaConfig replica;
  std::string admin_token_file;  // bootstrap admin token: read if present, else written
  std::string policy_file;       // authority policy (YAML); empty = the built-in default
  AuditConfig audit;
  AgentsConfig agents;
  EventsConfig events;
  CicdConfig cicd;
  std::string log_level = "info";
  // One I/O thread runs every connection; blocking work (database) runs on the workers.
  int worker_threads = 16;
  bool dev = false;  // throw-away instance: temp data dir, token printed, demo store

  std::string SqlitePath() const;
  std::string SigningKeyPath() const;
};

// Reads and merges a YAML file into `config`. Errors name the file, line and problem.
Status MergeYamlFile(const std::string& path, Config& config);
// Applies STOREPLANE_* variables from `env` (name -> value).
Status MergeEnvironment(const std::map<std::string, std::string>& env, Config& config);
// Final checks after all layers: listen address, directories, limits, TLS files.
Status Validate(const Config& config);

// The process environment as a map, for MergeEnvironment.
std::map<std::string, std::string> ProcessEnvironment();

}  // namespace storeplane::server
