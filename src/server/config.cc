#include "server/config.h"

#include "core/pipeline_run.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>

extern char** environ;  // NOLINT

namespace storeplane::server {
namespace {

Error ConfigError(const std::string& where, const std::string& problem) {
  return Error::Invalid(where + ": " + problem);
}

std::string Where(const std::string& path, const YAML::Node& node) {
  const auto mark = node.Mark();
  if (mark.line < 0) return path;
  return path + ":" + std::to_string(mark.line + 1);
}

template <typename T>
Status ReadScalar(const std::string& path, const YAML::Node& node, const char* name, T& out) {
  try {
    out = node.as<T>();
    return Status::Ok();
  } catch (const YAML::Exception&) {
    return ConfigError(Where(path, node), std::string("'") + name + "' has the wrong type");
  }
}

// Reads map[key] into `out` when the key is present; leaves `out` alone otherwise.
template <typename T>
Status ReadIf(const std::string& path, const YAML::Node& map, const char* key, T& out) {
  if (const auto n = map[key]) return ReadScalar(path, n, key, out);
  return Status::Ok();
}

Status CheckKeys(const std::string& path, const YAML::Node& map, const std::set<std::string>& known,
                 const std::string& section) {
  if (!map.IsMap()) return ConfigError(Where(path, map), "'" + section + "' must be a mapping");
  for (const auto& kv : map) {
    // A complex key ("? [a]: b") is not a name; as<std::string>() would throw.
    if (!kv.first.IsScalar()) return ConfigError(Where(path, kv.first), "keys in " + section + " must be names");
    const auto key = kv.first.as<std::string>();
    if (!known.contains(key)) {
      return ConfigError(Where(path, kv.first), "unknown key '" + key + "' in " + section);
    }
  }
  return Status::Ok();
}

// cicd: public_url, timeouts, the health gate, providers (by name) and routes.
Status MergeCicd(const std::string& path, const YAML::Node& node, CicdConfig& cicd) {
  SP_RETURN_IF_ERROR(CheckKeys(
      path, node,
      {"public_url", "run_timeout_s", "poll_interval_s", "health_gate", "trigger_retry_max_s", "providers", "routes"},
      "cicd"));
  SP_RETURN_IF_ERROR(ReadIf(path, node, "public_url", cicd.public_url));
  while (!cicd.public_url.empty() && cicd.public_url.back() == '/') cicd.public_url.pop_back();
  if (!cicd.public_url.empty() && !cicd.public_url.starts_with("http://") && !cicd.public_url.starts_with("https://")) {
    return ConfigError(Where(path, node["public_url"]), "cicd.public_url must be an http(s) URL");
  }
  SP_RETURN_IF_ERROR(ReadIf(path, node, "run_timeout_s", cicd.run_timeout_s));
  SP_RETURN_IF_ERROR(ReadIf(path, node, "poll_interval_s", cicd.poll_interval_s));
  SP_RETURN_IF_ERROR(ReadIf(path, node, "trigger_retry_max_s", cicd.trigger_retry_max_s));
  if (auto gate = node["health_gate"]) {
    SP_RETURN_IF_ERROR(CheckKeys(path, gate, {"consecutive", "window_s"}, "cicd.health_gate"));
    SP_RETURN_IF_ERROR(ReadIf(path, gate, "consecutive", cicd.gate_consecutive));
    SP_RETURN_IF_ERROR(ReadIf(path, gate, "window_s", cicd.gate_window_s));
  }
  if (auto providers = node["providers"]) {
    if (!providers.IsMap()) return ConfigError(Where(path, providers), "'cicd.providers' must map names to providers");
    cicd.providers.clear();
    for (const auto& kv : providers) {
      CicdProviderEntry entry;
      auto& p = entry.provider;
      SP_RETURN_IF_ERROR(ReadScalar(path, kv.first, "provider name", p.name));
      const auto& v = kv.second;
      const std::string section = "cicd.providers." + p.name;
      SP_RETURN_IF_ERROR(CheckKeys(path, v,
                                   {"type", "base_url", "token_file", "token_env", "secret_file", "secret_env",
                                    "settings", "ca_file", "timeout_ms", "callback_secret_file", "callback_secret_env",
                                    "callback_previous_secret_file", "max_triggers_per_minute"},
                                   section));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "type", p.type));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "base_url", p.base_url));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "token_file", p.token_file));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "token_env", p.token_env));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "secret_file", p.secret_file));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "secret_env", p.secret_env));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "settings", p.settings));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "ca_file", p.ca_file));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "timeout_ms", p.timeout_ms));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "callback_secret_file", entry.callback_secret_file));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "callback_secret_env", entry.callback_secret_env));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "callback_previous_secret_file", entry.callback_previous_secret_file));
      SP_RETURN_IF_ERROR(ReadIf(path, v, "max_triggers_per_minute", entry.max_triggers_per_minute));
      cicd.providers.push_back(std::move(entry));
    }
  }
  if (auto routes = node["routes"]) {
    if (!routes.IsSequence()) return ConfigError(Where(path, routes), "'cicd.routes' must be a list");
    cicd.routes.clear();
    for (const auto& r : routes) {
      SP_RETURN_IF_ERROR(CheckKeys(path, r, {"environments", "kinds", "provider"}, "a cicd route"));
      CicdRoute route;
      std::vector<std::string> list;
      if (r["environments"]) {
        SP_RETURN_IF_ERROR(ReadScalar(path, r["environments"], "environments", list));
        route.environments.insert(list.begin(), list.end());
      }
      if (r["kinds"]) {
        list.clear();
        SP_RETURN_IF_ERROR(ReadScalar(path, r["kinds"], "kinds", list));
        route.kinds.insert(list.begin(), list.end());
      }
      SP_RETURN_IF_ERROR(ReadIf(path, r, "provider", route.provider));
      if (route.provider.empty()) return ConfigError(Where(path, r), "a cicd route needs a provider");
      cicd.routes.push_back(std::move(route));
    }
  }
  return Status::Ok();
}

Status ParseBool(const std::string& name, const std::string& text, bool& out) {
  if (text == "true" || text == "1" || text == "yes") {
    out = true;
  } else if (text == "false" || text == "0" || text == "no") {
    out = false;
  } else {
    return Error::Invalid(name + " must be true or false");
  }
  return Status::Ok();
}

template <typename T>
Status ParseNumber(const std::string& name, const std::string& text, T& out) {
  T value{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return Error::Invalid(name + " must be a number");
  }
  out = value;
  return Status::Ok();
}

}  // namespace

std::string Config::SigningKeyPath() const {
  if (!audit.signing_key_file.empty()) return audit.signing_key_file;
  return (std::filesystem::path(data_dir) / "audit-signing.key").string();
}

std::string Config::SqlitePath() const {
  if (!storage.sqlite_path.empty()) return storage.sqlite_path;
  return (std::filesystem::path(data_dir) / "storeplane.db").string();
}

Status MergeYamlFile(const std::string& path, Config& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return ConfigError(path, "cannot read the configuration file");
  } catch (const YAML::ParserException& e) {
    return ConfigError(path + ":" + std::to_string(e.mark.line + 1), "does not parse: " + e.msg);
  }
  if (root.IsNull()) return Status::Ok();
  SP_RETURN_IF_ERROR(
      CheckKeys(path, root,
                {"listen", "data_dir", "environments", "tls", "limits", "storage", "admin_token_file", "log_level",
                 "worker_threads", "policy_file", "audit", "agents", "events", "cicd", "replica"},
                "the top level"));
  SP_RETURN_IF_ERROR(ReadIf(path, root, "listen", config.listen));
  SP_RETURN_IF_ERROR(ReadIf(path, root, "data_dir", config.data_dir));
  SP_RETURN_IF_ERROR(ReadIf(path, root, "admin_token_file", config.admin_token_file));
  SP_RETURN_IF_ERROR(ReadIf(path, root, "log_level", config.log_level));
  SP_RETURN_IF_ERROR(ReadIf(path, root, "worker_threads", config.worker_threads));
  SP_RETURN_IF_ERROR(ReadIf(path, root, "policy_file", config.policy_file));
  if (auto audit = root["audit"]) {
    SP_RETURN_IF_ERROR(CheckKeys(
        path, audit, {"signing_key_file", "checkpoint_every_records", "checkpoint_every_ms", "record_reads"}, "audit"));
    SP_RETURN_IF_ERROR(ReadIf(path, audit, "signing_key_file", config.audit.signing_key_file));
    SP_RETURN_IF_ERROR(ReadIf(path, audit, "checkpoint_every_records", config.audit.checkpoint_every_records));
    SP_RETURN_IF_ERROR(ReadIf(path, audit, "checkpoint_every_ms", config.audit.checkpoint_every_ms));
    SP_RETURN_IF_ERROR(ReadIf(path, audit, "record_reads", config.audit.record_reads));
  }
  if (auto cicd = root["cicd"]) SP_RETURN_IF_ERROR(MergeCicd(path, cicd, config.cicd));
  if (auto agents = root["agents"]) {
    SP_RETURN_IF_ERROR(
        CheckKeys(path, agents, {"heartbeat_interval_s", "flush_interval_ms", "rps", "burst"}, "agents"));
    SP_RETURN_IF_ERROR(ReadIf(path, agents, "heartbeat_interval_s", config.agents.heartbeat_interval_s));
    SP_RETURN_IF_ERROR(ReadIf(path, agents, "flush_interval_ms", config.agents.flush_interval_ms));
    SP_RETURN_IF_ERROR(ReadIf(path, agents, "rps", config.agents.rps));
    SP_RETURN_IF_ERROR(ReadIf(path, agents, "burst", config.agents.burst));
  }
  if (auto events = root["events"]) {
    SP_RETURN_IF_ERROR(CheckKeys(path, events, {"buffer", "max_streams", "keepalive_ms", "retention_s"}, "events"));
    SP_RETURN_IF_ERROR(ReadIf(path, events, "buffer", config.events.buffer));
    SP_RETURN_IF_ERROR(ReadIf(path, events, "max_streams", config.events.max_streams));
    SP_RETURN_IF_ERROR(ReadIf(path, events, "keepalive_ms", config.events.keepalive_ms));
    SP_RETURN_IF_ERROR(ReadIf(path, events, "retention_s", config.events.retention_s));
  }
  if (auto n = root["environments"]) {
    std::vector<std::string> envs;
    if (!n.IsSequence()) return ConfigError(Where(path, n), "'environments' must be a list of names");
    SP_RETURN_IF_ERROR(ReadScalar(path, n, "environments", envs));
    config.environments.names = std::set<std::string>(envs.begin(), envs.end());
  }
  if (auto tls = root["tls"]) {
    SP_RETURN_IF_ERROR(CheckKeys(path, tls, {"cert_file", "key_file"}, "tls"));
    SP_RETURN_IF_ERROR(ReadIf(path, tls, "cert_file", config.tls.cert_file));
    SP_RETURN_IF_ERROR(ReadIf(path, tls, "key_file", config.tls.key_file));
  }
  if (auto lim = root["limits"]) {
    SP_RETURN_IF_ERROR(CheckKeys(path, lim,
                                 {"body_bytes", "header_bytes", "read_timeout_ms", "idle_timeout_ms", "max_in_flight",
                                  "principal_rps", "principal_burst", "shutdown_grace_ms"},
                                 "limits"));
    auto& l = config.limits;
    SP_RETURN_IF_ERROR(ReadIf(path, lim, "body_bytes", l.body_bytes));
    SP_RETURN_IF_ERROR(ReadIf(path, lim, "header_bytes", l.header_bytes));
    SP_RETURN_IF_ERROR(ReadIf(path, lim, "read_timeout_ms", l.read_timeout_ms));
    SP_RETURN_IF_ERROR(ReadIf(path, lim, "idle_timeout_ms", l.idle_timeout_ms));
    SP_RETURN_IF_ERROR(ReadIf(path, lim, "max_in_flight", l.max_in_flight));
    SP_RETURN_IF_ERROR(ReadIf(path, lim, "principal_rps", l.principal_rps));
    SP_RETURN_IF_ERROR(ReadIf(path, lim, "principal_burst", l.principal_burst));
    SP_RETURN_IF_ERROR(ReadIf(path, lim, "shutdown_grace_ms", l.shutdown_grace_ms));
  }
  if (auto st = root["storage"]) {
    SP_RETURN_IF_ERROR(CheckKeys(path, st, {"driver", "sqlite", "postgres"}, "storage"));
    SP_RETURN_IF_ERROR(ReadIf(path, st, "driver", config.storage.driver));
    if (auto pg = st["postgres"]) {
      SP_RETURN_IF_ERROR(CheckKeys(path, pg, {"conninfo_file", "pool_size", "migrate_on_start"}, "storage.postgres"));
      SP_RETURN_IF_ERROR(ReadIf(path, pg, "conninfo_file", config.storage.postgres_conninfo_file));
      SP_RETURN_IF_ERROR(ReadIf(path, pg, "pool_size", config.storage.postgres_pool_size));
      SP_RETURN_IF_ERROR(ReadIf(path, pg, "migrate_on_start", config.storage.postgres_migrate_on_start));
    }
    if (auto sq = st["sqlite"]) {
      SP_RETURN_IF_ERROR(CheckKeys(path, sq, {"path", "group_commit", "read_connections"}, "storage.sqlite"));
      SP_RETURN_IF_ERROR(ReadIf(path, sq, "path", config.storage.sqlite_path));
      SP_RETURN_IF_ERROR(ReadIf(path, sq, "group_commit", config.storage.group_commit));
      SP_RETURN_IF_ERROR(ReadIf(path, sq, "read_connections", config.storage.read_connections));
    }
  }
  if (auto rep = root["replica"]) {
    SP_RETURN_IF_ERROR(CheckKeys(path, rep, {"name", "lease_ms", "renew_ms", "margin_ms"}, "replica"));
    SP_RETURN_IF_ERROR(ReadIf(path, rep, "name", config.replica.name));
    SP_RETURN_IF_ERROR(ReadIf(path, rep, "lease_ms", config.replica.lease_ms));
    SP_RETURN_IF_ERROR(ReadIf(path, rep, "renew_ms", config.replica.renew_ms));
    SP_RETURN_IF_ERROR(ReadIf(path, rep, "margin_ms", config.replica.margin_ms));
  }
  return Status::Ok();
}

Status MergeEnvironment(const std::map<std::string, std::string>& env, Config& config) {
  auto get = [&](const char* name) -> const std::string* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : &it->second;
  };
  if (auto v = get("STOREPLANE_LISTEN")) config.listen = *v;
  if (auto v = get("STOREPLANE_DATA_DIR")) config.data_dir = *v;
  if (auto v = get("STOREPLANE_ADMIN_TOKEN_FILE")) config.admin_token_file = *v;
  if (auto v = get("STOREPLANE_LOG_LEVEL")) config.log_level = *v;
  if (auto v = get("STOREPLANE_POLICY_FILE")) config.policy_file = *v;
  if (auto v = get("STOREPLANE_AUDIT_SIGNING_KEY_FILE")) config.audit.signing_key_file = *v;
  if (auto v = get("STOREPLANE_TLS_CERT_FILE")) config.tls.cert_file = *v;
  if (auto v = get("STOREPLANE_TLS_KEY_FILE")) config.tls.key_file = *v;
  if (auto v = get("STOREPLANE_SQLITE_PATH")) config.storage.sqlite_path = *v;
  if (auto v = get("STOREPLANE_STORAGE_DRIVER")) config.storage.driver = *v;
  if (auto v = get("STOREPLANE_POSTGRES_CONNINFO")) config.storage.postgres_conninfo = *v;
  if (auto v = get("STOREPLANE_POSTGRES_CONNINFO_FILE")) config.storage.postgres_conninfo_file = *v;
  if (auto v = get("STOREPLANE_REPLICA_NAME")) config.replica.name = *v;
  if (auto v = get("STOREPLANE_REPLICA_LEASE_MS")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_REPLICA_LEASE_MS", *v, config.replica.lease_ms));
  }
  if (auto v = get("STOREPLANE_REPLICA_RENEW_MS")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_REPLICA_RENEW_MS", *v, config.replica.renew_ms));
  }
  if (auto v = get("STOREPLANE_REPLICA_MARGIN_MS")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_REPLICA_MARGIN_MS", *v, config.replica.margin_ms));
  }
  if (auto v = get("STOREPLANE_GROUP_COMMIT")) {
    SP_RETURN_IF_ERROR(ParseBool("STOREPLANE_GROUP_COMMIT", *v, config.storage.group_commit));
  }
  if (auto v = get("STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S", *v, config.agents.heartbeat_interval_s));
  }
  if (auto v = get("STOREPLANE_EVENTS_KEEPALIVE_MS")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_EVENTS_KEEPALIVE_MS", *v, config.events.keepalive_ms));
  }
  if (auto v = get("STOREPLANE_EVENTS_MAX_STREAMS")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_EVENTS_MAX_STREAMS", *v, config.events.max_streams));
  }
  if (auto v = get("STOREPLANE_EVENTS_BUFFER")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_EVENTS_BUFFER", *v, config.events.buffer));
  }
  if (auto v = get("STOREPLANE_WORKER_THREADS")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_WORKER_THREADS", *v, config.worker_threads));
  }
  if (auto v = get("STOREPLANE_BODY_LIMIT_BYTES")) {
    SP_RETURN_IF_ERROR(ParseNumber("STOREPLANE_BODY_LIMIT_BYTES", *v, config.limits.body_bytes));
  }
  return Status::Ok();
}

Status Validate(const Config& config) {
  const auto colon = config.listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Error::Invalid("listen must be host:port, got '" + config.listen + "'");
  }
  int port = -1;
  const auto port_text = config.listen.substr(colon + 1);
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return Error::Invalid("listen port must be 0..65535, got '" + port_text + "'");
  }
  if (config.data_dir.empty()) return Error::Invalid("data_dir is required (or use --dev)");
  if (config.environments.names.empty()) return Error::Invalid("environments must name at least one");
  for (const auto& env : config.environments.names) {
    if (auto s = core::ValidateStoreId(env); !s.ok()) {
      return Error::Invalid("environment name '" + env + "' must be a DNS label");
    }
  }
  if (config.storage.driver != "sqlite" && config.storage.driver != "postgres") {
    return Error::Invalid("storage.driver must be sqlite or postgres, got '" + config.storage.driver + "'");
  }
  if (config.storage.driver == "postgres") {
    if (config.storage.postgres_conninfo.empty() && config.storage.postgres_conninfo_file.empty()) {
      return Error::Invalid(
          "storage.driver postgres needs a connection string: STOREPLANE_POSTGRES_CONNINFO, or a file named by "
          "storage.postgres.conninfo_file (STOREPLANE_POSTGRES_CONNINFO_FILE)");
    }
    if (config.storage.postgres_pool_size < 1) return Error::Invalid("storage.postgres.pool_size must be >= 1");
    const auto& r = config.replica;
    if (r.lease_ms < 1000 || r.renew_ms < 100 || r.margin_ms < 0 || r.renew_ms + r.margin_ms >= r.lease_ms) {
      return Error::Invalid(
          "replica: lease_ms must be >= 1000, renew_ms >= 100, margin_ms >= 0, and renew_ms + margin_ms < lease_ms");
    }
  }
  if (config.tls.cert_file.empty() != config.tls.key_file.empty()) {
    return Error::Invalid("tls needs both cert_file and key_file");
  }
  const auto& l = config.limits;
  if (l.body_bytes < 1024 || l.header_bytes < 1024) return Error::Invalid("limits are too small (>= 1024 bytes)");
  if (l.read_timeout_ms <= 0 || l.idle_timeout_ms <= 0) return Error::Invalid("timeouts must be positive");
  if (l.max_in_flight <= 0 || l.principal_rps <= 0 || l.principal_burst < 1) {
    return Error::Invalid("rate limits must be positive");
  }
  if (config.worker_threads < 1) return Error::Invalid("thread counts must be >= 1");
  if (config.audit.checkpoint_every_records < 1 || config.audit.checkpoint_every_ms < 1) {
    return Error::Invalid("audit checkpoint intervals must be positive");
  }
  const auto& c = config.cicd;
  if (c.run_timeout_s < 10 || c.poll_interval_s < 1 || c.gate_consecutive < 1 || c.gate_window_s < 1 ||
      c.trigger_retry_max_s < 1) {
    return Error::Invalid("cicd timings must be positive (run_timeout_s >= 10)");
  }
  std::set<std::string> names;
  for (const auto& entry : c.providers) {
    const auto& name = entry.provider.name;
    if (!core::ValidateStoreId(name).ok())
      return Error::Invalid("cicd provider name '" + name + "' must be a DNS label");
    if (entry.max_triggers_per_minute < 0 || entry.max_triggers_per_minute > 100'000) {
      return Error::Invalid("cicd.providers." + name + ".max_triggers_per_minute must be from 0 (unlimited) to 100000");
    }
    names.insert(name);
  }
  for (const auto& route : c.routes) {
    if (!names.contains(route.provider)) {
      return Error::Invalid("cicd route names provider '" + route.provider + "', which is not configured");
    }
    for (const auto& kind : route.kinds) {
      if (!core::ParseRunKind(kind)) {
        return Error::Invalid("cicd route names kind '" + kind +
                              "'; kinds are provision, deploy, rollback, decommission, isolation_migration");
      }
    }
    for (const auto& env : route.environments) {
      if (!config.environments.names.contains(env)) {
        return Error::Invalid("cicd route names environment '" + env + "', which is not configured");
      }
    }
  }
  const auto& a = config.agents;
  if (a.heartbeat_interval_s < 1 || a.heartbeat_interval_s > 3600) {
    return Error::Invalid("agents.heartbeat_interval_s must be from 1 to 3600");
  }
  if (a.flush_interval_ms < 10 || a.rps <= 0 || a.burst < 1) {
    return Error::Invalid("agents.flush_interval_ms must be >= 10 and agent rate limits positive");
  }
  const auto& e = config.events;
  if (e.buffer < 100 || e.buffer > 1'000'000) return Error::Invalid("events.buffer must be from 100 to 1000000");
  if (e.max_streams < 1 || e.max_streams > 100'000)
    return Error::Invalid("events.max_streams must be from 1 to 100000");
  if (e.retention_s < 60) return Error::Invalid("events.retention_s must be at least 60");
  if (e.keepalive_ms < 1'000 || e.keepalive_ms > 300'000) {
    return Error::Invalid("events.keepalive_ms must be from 1000 to 300000");
  }
  static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error"};
  if (!kLevels.contains(config.log_level)) return Error::Invalid("log_level must be trace|debug|info|warn|error");
  return Status::Ok();
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return out;
}

}  // namespace storeplane::server
