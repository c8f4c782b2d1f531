// bench_populate: fills a storeplaned data directory for the restart, read-latency and
// 100,000-store scenarios, writing through the repository API (db::Repository::Apply) in
// large batches, exactly as the server would: every change with its audit record, sealed
// into the hash chain in order, checkpoints signed with the data directory's key.
//
//   bench_populate --data-dir DIR [--stores 100000] [--audit 1000000] [--batch 1000]
//
// Creates DIR/storeplane.db, DIR/audit-signing.key and DIR/admin.token (the bootstrap
// admin principal "admin" with a generated token, as storeplaned's first start would).
// Store i is "bench-<i>": environment production (10%), staging (20%) or development,
// labels tier=gold|silver|bronze (i % 3), region=eu|us|ap|sa (i % 4), team=t<i % 50>.
// Each store gets an enrollment token (used) and an enrolled agent whose credential is
// the deterministic "spa_benchcred" + <i, 30 digits> (bench_agent_swarm --preenrolled
// derives the same text): the swarm needs no setup round for 100,000 agents. Audit
// records: store.register, agent.enroll and agent.enrolled per store, the rest are
// store.label records spread over the stores, up to --audit in total.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>

#include "core/audit.h"
#include "core/store.h"
#include "db/repository.h"
#include "db/sqlite_repository.h"

namespace fs = std::filesystem;
using namespace storeplane;

namespace {

std::string Credential(long index) {
  std::ostringstream out;
  out << "spa_benchcred" << std::setw(30) << std::setfill('0') << index;
  return out.str();
}

std::string Hex(std::mt19937_64& rng, int bytes) {
  std::string raw;
  for (int i = 0; i < bytes; ++i) raw.push_back(static_cast<char>(rng() & 0xff));
  return core::ToHex(raw);
}

core::AuditEntry Entry(std::int64_t now_ms, std::string principal, std::string rule, std::string action,
                       std::string target, std::map<std::string, std::string> params) {
  core::AuditEntry e;
  e.time_ms = now_ms;
  e.principal = std::move(principal);
  e.source = "127.0.0.1";
  e.action = std::move(action);
  e.target = std::move(target);
  e.request_id = "bench";
  e.decision = "allow";
  e.rule = std::move(rule);
  e.outcome = "ok";
  e.params = std::move(params);
  return e;
}

bool WriteFile(const fs::path& path, const std::string& text) {
  ::umask(077);
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  ::chmod(path.c_str(), 0600);
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir;
  long stores = 100'000;
  long audit_total = 1'000'000;
  long batch_stores = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "usage: bench_populate --data-dir DIR [--stores N] [--audit N] [--batch N]\n";
      return 2;
    }
    if (arg == "--data-dir") {
      data_dir = argv[++i];
    } else if (arg == "--stores") {
      stores = std::atol(argv[++i]);
    } else if (arg == "--audit") {
      audit_total = std::atol(argv[++i]);
    } else if (arg == "--batch") {
      batch_stores = std::atol(argv[++i]);
    } else {
      std::cerr << "bench_populate: unknown argument " << arg << "\n";
      return 2;
    }
  }
  if (data_dir.empty() || stores < 1 || batch_stores < 1) {
    std::cerr << "usage: bench_populate --data-dir DIR [--stores N] [--audit N] [--batch N]\n";
    return 2;
  }
  const auto started = std::chrono::steady_clock::now();
  fs::create_directories(data_dir);
  fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace);
  const fs::path dir{data_dir};
  if (fs::exists(dir / "storeplane.db")) {
    std::cerr << "bench_populate: " << (dir / "storeplane.db") << " exists already\n";
    return 1;
  }

  auto key = core::GenerateSigningKey();
  if (!key.ok()) {
    std::cerr << "bench_populate: cannot generate a signing key: " << key.error().message << "\n";
    return 1;
  }
  if (!WriteFile(dir / "audit-signing.key", key->private_pem)) {
    std::cerr << "bench_populate: cannot write the signing key\n";
    return 1;
  }
  db::SqliteOptions options;
  options.path = (dir / "storeplane.db").string();
  options.signing_key_pem = key->private_pem;
  auto opened = db::OpenSqliteRepository(options);
  if (!opened.ok()) {
    std::cerr << "bench_populate: cannot open the database: " << opened.error().message << "\n";
    return 1;
  }
  db::Repository& repo = **opened;
  std::mt19937_64 rng{std::random_device{}()};
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();

  // The bootstrap admin, as storeplaned's first start creates it.
  const std::string admin_token = "spt_bench" + Hex(rng, 24);
  {
    db::Principal admin{"admin", "bootstrap administrator", "operator", {}, now_ms};
    db::TokenRecord token;
    token.id = "tok_" + Hex(rng, 12);
    token.token_hash = core::Sha256Hex(admin_token);
    token.principal_id = admin.id;
    token.description = "bootstrap admin token (bench_populate)";
    token.created_at_ms = now_ms;
    token.created_by = "system";
    db::WriteBatch batch;
    batch.effects.emplace_back(db::InsertTokenEffect{admin, token});
    auto entry = Entry(now_ms, "system", "system", "token.create", "token/" + token.id,
                       {{"principal", "admin"}, {"reason", "bootstrap"}});
    entry.source = "internal";
    batch.audit.push_back(entry);
    if (auto written = repo.Apply(batch); !written.ok()) {
      std::cerr << "bench_populate: bootstrap: " << written.error().message << "\n";
      return 1;
    }
    if (!WriteFile(dir / "admin.token", admin_token + "\n")) return 1;
  }

  const core::EnvironmentSet envs;
  static const char* kTiers[] = {"gold", "silver", "bronze"};
  static const char* kRegions[] = {"eu", "us", "ap", "sa"};
  long audit_written = 1;
  const long per_store_base = 3;
  const long extra_total = std::max(0L, audit_total - 1 - per_store_base * stores);
  long extra_written = 0;
  for (long first = 0; first < stores; first += batch_stores) {
    const long last = std::min(stores, first + batch_stores);
    db::WriteBatch batch;
    for (long i = first; i < last; ++i) {
      const std::string id = "bench-" + std::to_string(i);
      const std::string env = i % 10 == 0 ? "production" : i % 10 < 3 ? "staging" : "development";
      core::StoreRegistration reg{
          id,
          "Bench store " + std::to_string(i),
          env,
          "shared",
          {{"tier", kTiers[i % 3]}, {"region", kRegions[i % 4]}, {"team", "t" + std::to_string(i % 50)}}};
      auto store = core::NewStore(reg, envs, now_ms);
      if (!store.ok()) {
        std::cerr << "bench_populate: store " << id << ": " << store.error().message << "\n";
        return 1;
      }
      batch.effects.emplace_back(db::InsertStoreEffect{*store});
      batch.audit.push_back(Entry(now_ms, "admin", "role:operator", "store.register", "store/" + id,
                                  {{"environment", env}, {"isolation_mode", "shared"}}));

      db::EnrollmentToken token;
      token.id = "enr_" + Hex(rng, 12);
      token.token_hash = core::Sha256Hex("spe_" + Hex(rng, 32));
      token.store_id = id;
      token.created_by = "admin";
      token.created_at_ms = now_ms;
      token.expires_at_ms = now_ms + 3'600'000;
      batch.effects.emplace_back(db::InsertEnrollmentTokenEffect{token});
      batch.audit.push_back(Entry(now_ms, "admin", "role:security-admin", "agent.enroll", "store/" + id,
                                  {{"enrollment_token", token.id}}));

      db::AgentRecord agent;
      agent.store_id = id;
      agent.id = "agt_" + Hex(rng, 12);
      agent.credential_hash = core::Sha256Hex(Credential(i));
      agent.enrolled_at_ms = now_ms;
      agent.agent_version = "0.1.0";
      batch.effects.emplace_back(db::EnrollAgentEffect{token.id, now_ms, agent});
      batch.audit.push_back(Entry(now_ms, "agent:" + id, "agent-credential", "agent.enrolled", "store/" + id,
                                  {{"agent_id", agent.id}, {"enrollment_token", token.id}}));
      audit_written += per_store_base;
    }
    // This batch's share of the remaining records: label changes spread over its stores.
    const long share = extra_total * last / stores - extra_written;
    for (long k = 0; k < share; ++k) {
      const long i = first + k % (last - first);
      batch.audit.push_back(Entry(now_ms, "admin", "role:operator", "store.label", "store/bench-" + std::to_string(i),
                                  {{"label_keys", "region,team,tier"}, {"version", "1"}}));
    }
    extra_written += share;
    audit_written += share;
    if (auto written = repo.Apply(batch); !written.ok()) {
      std::cerr << "bench_populate: batch at " << first << ": " << written.error().message << "\n";
      return 1;
    }
  }
  opened->reset();  // closes: the last checkpoint is signed and written
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "stores=" << stores << "\naudit_records=" << audit_written << "\nseconds=" << seconds << "\n";
  std::cerr << "bench_populate: " << stores << " stores, " << audit_written << " audit records in " << seconds
            << " s\n";
  return 0;
}
