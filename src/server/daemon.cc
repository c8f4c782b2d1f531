#include "server/daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <atomic>
#include <iterator>
#include "core/audit.h"
#include "core/store.h"
#include "db/postgres_repository.h"
#include "db/sqlite_repository.h"
#include "db/sqlite_to_postgres.h"
#include "server/agent_hub.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/event_feed.h"
#include "server/event_hub.h"
#include "server/handler_support.h"
#include "server/http_server.h"
#include "server/leadership.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/policy_loader.h"
#include "server/provider_pacing.h"
#include "server/rollout_orchestrator.h"
#include "server/run_coordinator.h"

namespace storeplane::server {
namespace {

namespace fs = std::filesystem;

Status EnsureDataDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::Invalid("cannot create data_dir " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::Invalid("cannot read admin token file " + path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (!BearerToken("Bearer " + token)) return Error::Invalid("admin token file " + path + " holds no valid token");
  if (token.size() < 20) return Error::Invalid("admin token in " + path + " is too short (at least 20 characters)");
  return token;
}

Status WriteTokenFile(const std::string& path, const std::string& token) {
  const auto tmp = path + ".tmp";
  ::umask(077);
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << token << "\n";
    if (!out.flush()) return Error::Invalid("cannot write admin token file " + path);
  }
  ::chmod(tmp.c_str(), 0600);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Error::Invalid("cannot write admin token file " + path + ": " + ec.message());
  return Status::Ok();
}

// On a database with no principals, creates the bootstrap admin. Its token comes from
// admin_token_file when that file exists; otherwise it is generated (and written to the
// file when one is configured) and printed once on stdout.
Status Bootstrap(db::Repository& repo, const Config& config, std::int64_t now_ms) {
  auto count = repo.CountPrincipals();
  if (!count.ok()) return count.error();
  if (*count > 0) return Status::Ok();
  std::string token;
  bool generated = false;
  if (!config.admin_token_file.empty() && fs::exists(config.admin_token_file)) {
    auto read = ReadTokenFile(config.admin_token_file);
    if (!read.ok()) return read.error();
    token = std::move(*read);
  } else {
    token = GenerateToken();
    generated = true;
    if (!config.admin_token_file.empty()) SP_RETURN_IF_ERROR(WriteTokenFile(config.admin_token_file, token));
  }
  db::Principal admin{"admin", "bootstrap administrator", "operator", {}, now_ms};
  db::TokenRecord record;
  record.id = "tok_" + RandomHex(12);
  record.token_hash = Sha256Hex(token);
  record.principal_id = admin.id;
  record.description = "bootstrap admin token";
  record.created_at_ms = now_ms;
  record.created_by = "system";
  db::WriteBatch batch;
  batch.effects.emplace_back(db::InsertTokenEffect{admin, record});
  batch.audit.push_back(SystemAuditEntry(now_ms, "token.create", "token/" + record.id, "ok",
                                         {{"principal", admin.id}, {"reason", "bootstrap"}}));
  auto written = repo.Apply(batch);
  if (!written.ok()) return written.error();
  log::Info("bootstrap admin created", {{"principal", admin.id},
                                        {"token_id", record.id},
                                        {"token_source", generated ? "generated" : "admin_token_file"}});
  if (generated) std::cout << "STOREPLANE_TOKEN=" << token << std::endl;
  return Status::Ok();
}

Status SeedDemoStore(db::Repository& repo, const Config& config, std::int64_t now_ms) {
  core::StoreRegistration reg{"demo", "Demo store", "development", "shared", {{"demo", "true"}}};
  if (!config.environments.names.contains("development")) reg.environment = *config.environments.names.begin();
  auto store = core::NewStore(reg, config.environments, now_ms);
  if (!store.ok()) return store.error();
  if (repo.GetStore(store->id).ok()) return Status::Ok();
  db::WriteBatch batch;
  batch.effects.emplace_back(db::InsertStoreEffect{*store});
  batch.audit.push_back(SystemAuditEntry(now_ms, "store.register", "store/demo", "ok", {{"reason", "dev demo store"}}));
  auto written = repo.Apply(batch);
  if (!written.ok() && written.error().code != ErrorCode::kAlreadyExists) return written.error();
  return Status::Ok();
}

Result<core::Policy> LoadPolicy(const Config& config) {
  if (config.policy_file.empty()) {
    return ParsePolicyText(DefaultPolicyText(), "built-in default policy", config.environments);
  }
  return LoadPolicyFile(config.policy_file, config.environments);
}

// The checkpoint signing key: read from its file, or created there (0600) on first start.
// It stays in memory and in that file, never in the database.
Result<std::string> LoadOrCreateSigningKey(const std::string& path) {
  if (fs::exists(path)) {
    std::ifstream in(path);
    std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return Error::Invalid("cannot read the audit signing key " + path);
    auto check = core::PublicKeyFromPrivate(pem);
    if (!check.ok()) return Error::Invalid("audit signing key " + path + " is not an Ed25519 private key (PEM)");
    return pem;
  }
  auto key = core::GenerateSigningKey();
  if (!key.ok()) return key.error();
  ::umask(077);
  const auto tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << key->private_pem;
    if (!out.flush()) return Error::Invalid("cannot write the audit signing key " + path);
  }
  ::chmod(tmp.c_str(), 0600);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Error::Invalid("cannot write the audit signing key " + path + ": " + ec.message());
  log::Warn("created an audit signing key; keep a copy of its public key outside this host", {{"path", path}});
  return key->private_pem;
}

int Fail(const std::string& what, const Error& error) {
  log::Error(what, {{"detail", error.message}});
  std::cerr << "storeplaned: " << what << ": " << error.message << std::endl;
  return 1;
}

// The PostgreSQL connection string: STOREPLANE_POSTGRES_CONNINFO, else the file's first
// line. Never logged, never part of an error message.
Status LoadConninfo(Config& config) {
  if (!config.storage.postgres_conninfo.empty()) return Status::Ok();
  std::ifstream in(config.storage.postgres_conninfo_file);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return Error::Invalid("cannot read the PostgreSQL connection string from " + config.storage.postgres_conninfo_file);
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.empty()) return Error::Invalid(config.storage.postgres_conninfo_file + " holds no connection string");
  config.storage.postgres_conninfo = std::move(line);
  return Status::Ok();
}

// Opens the configured back end. PostgreSQL: an empty database gets the schema; an older
// one is migrated only with storage.postgres.migrate_on_start (else `storeplaned migrate`).
Result<std::unique_ptr<db::Repository>> OpenStorage(const Config& config, const std::string& signing_key) {
  if (config.storage.driver == "postgres") {
    db::PostgresOptions options;
    options.conninfo = config.storage.postgres_conninfo;
    options.pool_size = config.storage.postgres_pool_size;
    options.signing_key_pem = signing_key;
    options.checkpoint_every_records = config.audit.checkpoint_every_records;
    options.checkpoint_every_ms = config.audit.checkpoint_every_ms;
    auto version = db::PostgresSchemaVersion(options.conninfo);
    if (!version.ok()) return version.error();
    options.migrate = *version == 0 || config.storage.postgres_migrate_on_start;
    return db::OpenPostgresRepository(options);
  }
  db::SqliteOptions options;
  options.path = config.SqlitePath();
  options.signing_key_pem = signing_key;
  options.checkpoint_every_records = config.audit.checkpoint_every_records;
  options.checkpoint_every_ms = config.audit.checkpoint_every_ms;
  options.group_commit = config.storage.group_commit;
  options.read_connections = config.storage.read_connections;
  return db::OpenSqliteRepository(options);
}

}  // namespace

int RunDaemon(Config config) {
  log::Init(config.log_level);
  std::string dev_dir;
  if (config.dev) {
    char pattern[] = "/tmp/storeplane-dev-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return Fail("cannot create a temporary directory", Error::Internal("mkdtemp"));
    dev_dir = pattern;
    config.data_dir = dev_dir;
    config.storage.sqlite_path.clear();
  }
  if (auto s = Validate(config); !s.ok()) return Fail("invalid configuration", s.error());
  if (auto s = EnsureDataDir(config.data_dir); !s.ok()) return Fail("cannot prepare the data directory", s.error());
  // One process per data directory: with replicas, the directory names the replica (its
  // lease), so a second process on it would lead under the same name. Released by the
  // kernel when the process ends, however it ends.
  int dir_lock = -1;
  if (config.storage.driver == "postgres") {
    if (auto s = LoadConninfo(config); !s.ok()) return Fail("invalid configuration", s.error());
    dir_lock = ::open((fs::path(config.data_dir) / "storeplaned.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (dir_lock < 0 || ::flock(dir_lock, LOCK_EX | LOCK_NB) != 0) {
      return Fail("cannot lock the data directory",
                  Error::Invalid("another storeplaned uses " + config.data_dir + " (or it is not writable)"));
    }
  }

  auto policy = LoadPolicy(config);
  if (!policy.ok()) return Fail("invalid policy", policy.error());
  auto signing_key = LoadOrCreateSigningKey(config.SigningKeyPath());
  if (!signing_key.ok()) return Fail("cannot load the audit signing key", signing_key.error());
  auto public_key = core::PublicKeyFromPrivate(*signing_key);
  if (!public_key.ok()) return Fail("cannot load the audit signing key", public_key.error());

  auto repo = OpenStorage(config, *signing_key);
  if (!repo.ok()) return Fail("cannot open storage", repo.error());

  const auto now = SystemNowMs();
  if (auto s = Bootstrap(**repo, config, now); !s.ok()) return Fail("cannot bootstrap the admin principal", s.error());
  if (config.dev) {
    if (auto s = SeedDemoStore(**repo, config, now); !s.ok()) return Fail("cannot seed the demo store", s.error());
  }

  log::Info("policy loaded", {{"source", config.policy_file.empty() ? "built-in default" : config.policy_file},
                              {"sha256", policy->source_hash}});
  // The policy in force from now on is on the record, like every later reload.
  if (auto s = (*repo)->AppendAudit(SystemAuditEntry(now, "policy.reload", "policy", "ok",
                                                     {{"sha256", policy->source_hash}, {"reason", "start"}}),
                                    true);
      !s.ok()) {
    log::Error("cannot audit the policy loaded at start", {{"detail", s.error().message}});
  }
  PolicyHolder holder(std::make_shared<const core::Policy>(std::move(*policy)));
  std::atomic<int> reload_failures{0};
  // SIGHUP: a valid file is swapped in atomically; an invalid one is refused and the old
  // policy stays. Either way the attempt is logged, audited and (failures) counted.
  auto reload = [&] {
    const auto now_ms = SystemNowMs();
    auto loaded = LoadPolicy(config);
    if (loaded.ok()) {
      const auto hash = loaded->source_hash;
      holder.Set(std::make_shared<const core::Policy>(std::move(*loaded)));
      auto s = (*repo)->AppendAudit(
          SystemAuditEntry(now_ms, "policy.reload", "policy", "ok", {{"sha256", hash}, {"reason", "sighup"}}), true);
      if (!s.ok()) log::Error("cannot audit the policy reload", {{"detail", s.error().message}});
      log::Info("policy reloaded", {{"sha256", hash}});
    } else {
      const int failures = ++reload_failures;
      auto entry = SystemAuditEntry(now_ms, "policy.reload", "policy", "error:invalid",
                                    {{"reload_failures", std::to_string(failures)}, {"reason", "sighup"}});
      entry.decision = "deny";
      auto s = (*repo)->AppendAudit(entry, true);
      if (!s.ok()) log::Error("cannot audit the refused policy reload", {{"detail", s.error().message}});
      log::Error("policy reload refused; the previous policy stays",
                 {{"detail", loaded.error().message}, {"reload_failures", failures}});
    }
  };

  // Replicas (PostgreSQL, ADR 0012) share their events through the database: each batch's
  // events are written in its transaction and every replica's feed reads them back; one
  // process (SQLite) publishes straight from the commit listener.
  const bool replicas = (*repo)->SharesEvents();
  // Outlives everything that publishes into it: the writer (drained by repo->reset() below)
  // and the agent hub (which publishes as it stops).
  EventHub events(EventHub::Options{static_cast<std::size_t>(config.events.buffer), config.events.max_streams,
                                    replicas ? (*repo)->EventEpoch() : std::string()},
                  SystemNowMs);
  std::unique_ptr<EventFeed> feed;
  if (replicas) {
    (*repo)->SetEventEncoder([](const db::WriteBatch& batch, const db::WriteResult& result) {
      return EventHub::EncodeBatch(batch, result, SystemNowMs());
    });
    EventFeed::Options feed_options;
    feed_options.retention_ms = static_cast<std::int64_t>(config.events.retention_s) * 1000;
    feed = std::make_unique<EventFeed>(**repo, events, nullptr, feed_options);
  } else {
    (*repo)->SetCommitListener([&events](const db::WriteBatch& batch, const db::WriteResult& result) {
      events.Publish(EventHub::DraftsOf(batch, result, SystemNowMs()));
    });
  }
  // Whether this replica leads (runs the reconcilers); on SQLite always. Stopped (the
  // lease given up) after every leader loop has ended, before the database closes.
  Leadership leadership(
      **repo,
      Leadership::Options{config.replica.name.empty() ? DefaultReplicaName(config.data_dir) : config.replica.name,
                          config.replica.lease_ms, config.replica.renew_ms, config.replica.margin_ms},
      SteadyNowMs);

  int code = 0;
  {
    AgentHubOptions hub_options;
    hub_options.heartbeat_interval_ms = static_cast<std::int64_t>(config.agents.heartbeat_interval_s) * 1000;
    hub_options.flush_interval_ms = config.agents.flush_interval_ms;
    hub_options.seen_write_ms = hub_options.heartbeat_interval_ms;
    hub_options.agent_rps = config.agents.rps;
    hub_options.agent_burst = config.agents.burst;
    hub_options.shared_storage = replicas;
    AgentHub hub(**repo, hub_options, SystemNowMs);
    if (auto s = hub.Load(); !s.ok()) return Fail("cannot load the agents", s.error());
    hub.SetLeadership(&leadership);
    hub.SetStatusListener([&events, feed = feed.get()](const std::string& store, const std::string& agent,
                                                       core::Availability availability, core::Health health) {
      auto draft =
          EventHub::AgentStatusDraft(store, agent, core::ToString(availability), core::ToString(health), SystemNowMs());
      if (feed != nullptr) {
        feed->Append(std::move(draft));  // to every replica, through the shared log
      } else {
        events.Publish({std::move(draft)});
      }
    });
    auto providers = RunCoordinator::MakeProviders(config.cicd);
    if (!providers.ok()) return Fail("invalid CI/CD configuration", providers.error());
    RunCoordinator runs(**repo, config.cicd, config.cicd.public_url, std::move(*providers), SystemNowMs);
    runs.SetLeadership(&leadership);
    runs.SetStoreObserver([&hub](const core::Store& store) { hub.OnStoreChanged(store); });
    // Set before the hub's sweeper starts: with replicas it calls the observer as it refreshes.
    hub.SetHeartbeatObserver([&runs](const std::string& store, const std::optional<std::string>& release,
                                     core::Health health) { runs.ObserveHeartbeat(store, release, health); },
                             [&runs](const std::string& store) { return runs.GatesStore(store); });
    // Provider pacing, when any provider has a rate: the outbox waits for tokens, and
    // rollouts start no more runs than tokens allow.
    std::map<std::string, int> rates;
    for (const auto& entry : config.cicd.providers) {
      if (entry.max_triggers_per_minute > 0) rates[entry.provider.name] = entry.max_triggers_per_minute;
    }
    std::unique_ptr<ProviderPacer> pacer;
    if (!rates.empty()) {
      pacer = std::make_unique<ProviderPacer>(rates);
      runs.SetPacer(pacer.get());
    }
    RolloutOrchestrator rollouts(RolloutOrchestrator::Dependencies{**repo, config, holder,
                                                                   [&hub](const std::string& store_id) {
                                                                     AgentObservation o;
                                                                     if (auto view = hub.View(store_id)) {
                                                                       o.availability = view->availability;
                                                                       o.health = view->health.health;
                                                                       o.release = view->record.release;
                                                                     }
                                                                     return o;
                                                                   },
                                                                   pacer.get(), [&runs] { runs.Kick(); }, SystemNowMs});
    rollouts.SetLeadership(&leadership);
    runs.SetRolloutRunObserver([&rollouts](const db::PipelineRunRecord&) { rollouts.Kick(); });
    // Whatever way this block is left: the threads that call into each other (the hub into
    // the coordinator, the coordinator into the orchestrator and the pacer, the feed into
    // the hub) stop before any of them is destroyed, and the lease is given up last.
    struct StopAll {
      std::function<void()> fn;
      ~StopAll() { fn(); }
    } stop_all{[&] {
      runs.Stop();
      rollouts.Stop();
      if (feed) feed->SetOnOperationQueued(nullptr);
      hub.Stop();
      if (feed) feed->Stop();  // after the hub's last status events; its callbacks use the above
      leadership.Stop();
    }};
    leadership.Start();  // a first attempt at once: a lone replica leads from its first moment
    hub.Start();
    if (feed) {
      feed->SetOnOperationQueued([&hub](const std::string& store_id) { hub.OnOperationQueuedElsewhere(store_id); });
      feed->SetIsLeader([&leadership] { return leadership.is_leader(); });
      // Runs and rollouts requested on any replica: the leader starts on them at once.
      feed->SetOnPublished([&leadership, &runs, &rollouts](const std::vector<db::StoredEvent>& published) {
        if (!leadership.is_leader()) return;
        bool run = false;
        bool rollout = false;
        for (const auto& event : published) {
          run = run || event.type.starts_with("run.");
          rollout = rollout || event.type.starts_with("rollout.");
        }
        if (run) runs.Kick();
        if (rollout) rollouts.Kick();
      });
      feed->Start();
    }
    Metrics metrics(config.environments);
    Services services{**repo, config, holder, *public_key};
    services.agents = &hub;
    services.runs = &runs;
    services.rollouts = &rollouts;
    services.events = &events;
    services.metrics = &metrics;
    services.leadership = &leadership;
    App app(services);
    HttpServer server(config, app);
    if (auto s = server.Listen(); !s.ok()) return Fail("cannot start the server", s.error());
    // Pipelines call back at the public URL, or at the address actually bound.
    if (config.cicd.public_url.empty()) runs.SetPublicUrl(server.url());
    runs.Start();
    rollouts.Start();
    server.Run(
        [&] {
          log::Info("listening", {{"url", server.url()},
                                  {"data_dir", config.data_dir},
                                  {"dev", config.dev},
                                  {"storage", config.storage.driver},
                                  {"replica", leadership.holder()},
                                  {"group_commit", config.storage.group_commit}});
          std::cout << "STOREPLANE_ADDR=" << server.url() << std::endl;
        },
        reload);
  }
  repo->reset();  // drains the writer and closes the database
  if (!dev_dir.empty()) {
    std::error_code ec;
    fs::remove_all(dev_dir, ec);
  }
  log::Info("exited cleanly");
  log::Flush();
  return code;
}

int RunMigrate(Config config, const std::string& from_sqlite) {
  log::Init(config.log_level);
  if (config.storage.driver != "postgres") {
    std::cerr << "storeplaned migrate: storage.driver is sqlite, which migrates itself at start; set storage.driver "
                 "postgres (STOREPLANE_STORAGE_DRIVER=postgres) and its connection string"
              << std::endl;
    return 2;
  }
  if (config.data_dir.empty()) config.data_dir = ".";  // not used by migrate, but Validate wants one
  if (auto s = Validate(config); !s.ok()) return Fail("invalid configuration", s.error());
  if (auto s = LoadConninfo(config); !s.ok()) return Fail("invalid configuration", s.error());
  auto before = db::PostgresSchemaVersion(config.storage.postgres_conninfo);
  if (!before.ok()) return Fail("cannot reach PostgreSQL", before.error());
  auto version = db::MigratePostgres(config.storage.postgres_conninfo);
  if (!version.ok()) return Fail("cannot migrate the PostgreSQL schema", version.error());
  std::cout << "schema: version " << *before << " -> " << *version << std::endl;
  if (from_sqlite.empty()) return 0;

  if (!fs::exists(from_sqlite))
    return Fail("cannot copy from SQLite", Error::NotFound(from_sqlite + " does not exist"));
  {
    // Brings the SQLite file to the current schema first (its own migrations), then closes it.
    db::SqliteOptions sqlite;
    sqlite.path = from_sqlite;
    auto opened = db::OpenSqliteRepository(sqlite);
    if (!opened.ok()) return Fail("cannot open the SQLite database", opened.error());
  }
  std::string public_key;
  if (fs::exists(config.SigningKeyPath())) {
    auto key = LoadOrCreateSigningKey(config.SigningKeyPath());
    if (!key.ok()) return Fail("cannot load the audit signing key", key.error());
    auto pub = core::PublicKeyFromPrivate(*key);
    if (!pub.ok()) return Fail("cannot load the audit signing key", pub.error());
    public_key = *pub;
  }
  auto report = db::CopySqliteToPostgres(from_sqlite, config.storage.postgres_conninfo, public_key);
  if (!report.ok()) return Fail("cannot copy the SQLite database to PostgreSQL", report.error());
  for (const auto& [table, rows] : report->tables) std::cout << "copied " << table << ": " << rows << std::endl;
  std::cout << "audit chain verified: " << report->audit_records << " records, " << report->audit_checkpoints_verified
            << " signed checkpoints" << (public_key.empty() ? " (no signing key found: signatures not checked)" : "")
            << std::endl;
  return 0;
}

}  // namespace storeplane::server
