// storeplaned: the storeplane control-plane server. Flags override environment
// variables, which override the YAML configuration file, which overrides defaults.
#include <CLI/CLI.hpp>
#include <iostream>

#include "server/config.h"
#include "server/daemon.h"

int main(int argc, char** argv) {
  using storeplane::server::Config;
  CLI::App cli{"storeplaned: the control plane of a hosting platform for Magento stores"};
  cli.footer(
      "Precedence: flags > STOREPLANE_* environment variables > --config file > defaults.\n"
      "On a first start the bootstrap admin token is printed once (STOREPLANE_TOKEN=...),\n"
      "or read from --admin-token-file. Once listening it prints STOREPLANE_ADDR=<url>.");
  cli.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // the last flag wins
  std::string config_file;
  std::string listen, data_dir, log_level, token_file, cert, key, policy_file, signing_key;
  bool dev = false;
  bool version = false;
  cli.add_option("-c,--config", config_file, "YAML configuration file (also STOREPLANE_CONFIG)");
  cli.add_option("--listen", listen, "host:port to listen on (port 0 picks a free port)");
  cli.add_option("--data-dir", data_dir, "directory for the database and local state");
  cli.add_option("--admin-token-file", token_file, "bootstrap admin token: read if present, else created (0600)");
  cli.add_option("--tls-cert", cert, "PEM certificate chain; enables TLS with --tls-key");
  cli.add_option("--tls-key", key, "PEM private key");
  cli.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  cli.add_option("--policy", policy_file, "authority policy file (YAML); default: the built-in policy");
  cli.add_option("--audit-signing-key", signing_key,
                 "Ed25519 private key (PEM) for audit checkpoints; created if missing");
  cli.add_flag("--dev", dev, "throw-away instance: temporary data dir, new admin token, demo store");
  cli.add_flag("--version", version, "print the version and exit");
  std::string from_sqlite;
  auto* migrate =
      cli.add_subcommand("migrate", "apply pending PostgreSQL schema migrations (storage.driver postgres), then exit");
  migrate->add_option("--from-sqlite", from_sqlite,
                      "also copy this SQLite database (an existing installation) into the empty PostgreSQL "
                      "database and verify the copy");
  migrate->fallthrough();
  CLI11_PARSE(cli, argc, argv);
  if (version) {
    std::cout << "storeplaned 0.1.0" << std::endl;
    return 0;
  }

  Config config;
  const auto env = storeplane::server::ProcessEnvironment();
  if (config_file.empty()) {
    if (auto it = env.find("STOREPLANE_CONFIG"); it != env.end()) config_file = it->second;
  }
  if (!config_file.empty()) {
    if (auto s = storeplane::server::MergeYamlFile(config_file, config); !s.ok()) {
      std::cerr << "storeplaned: invalid configuration: " << s.error().message << std::endl;
      return 1;
    }
  }
  if (auto s = storeplane::server::MergeEnvironment(env, config); !s.ok()) {
    std::cerr << "storeplaned: invalid environment: " << s.error().message << std::endl;
    return 1;
  }
  if (!listen.empty()) config.listen = listen;
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (!token_file.empty()) config.admin_token_file = token_file;
  if (!cert.empty()) config.tls.cert_file = cert;
  if (!key.empty()) config.tls.key_file = key;
  if (!log_level.empty()) config.log_level = log_level;
  if (!policy_file.empty()) config.policy_file = policy_file;
  if (!signing_key.empty()) config.audit.signing_key_file = signing_key;
  config.dev = dev;
  if (*migrate) return storeplane::server::RunMigrate(std::move(config), from_sqlite);
  return storeplane::server::RunDaemon(std::move(config));
}
