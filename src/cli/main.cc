// storeplane: the operator CLI, a client of the public API only.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/agents_commands.h"
#include "cli/audit_commands.h"
#include "cli/authz_commands.h"
#include "cli/changes_commands.h"
#include "cli/cli_config.h"
#include "cli/completion.h"
#include "cli/events_commands.h"
#include "cli/ops_commands.h"
#include "cli/output.h"
#include "cli/rollouts_commands.h"
#include "cli/runs_commands.h"
#include "cli/stores_commands.h"
#include "cli/tokens_commands.h"

namespace storeplane::cli {
namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kFooter = R"(Configuration (first found wins): flags, then the environment
(STOREPLANE_ADDR, STOREPLANE_TOKEN, STOREPLANE_TOKEN_FILE, STOREPLANE_CA_FILE), then the
config file ($STOREPLANE_CONFIG or ~/.config/storeplane/config.yaml; keys server, token,
token_file, ca_file), then the default server http://127.0.0.1:8750.

Exit codes:
  0  success
  1  server error (5xx) or anything unexpected
  2  usage error (bad flags or arguments, bad key=value syntax, bad local config)
  3  not found (404)
  4  unauthenticated or forbidden (401, 403)
  5  conflict or failed precondition (409, 412, 428; label change without --overwrite)
  6  cannot reach the server
  7  input rejected by the server (400, 413, 415, 422)
  8  audit verify: the audit trail does not verify (the first bad record is named)
  9  ops run --wait: the operation failed or expired (its failure code is named);
     runs watch, and deploy, rollback, stores provision|decommission|migrate-isolation
     with --wait: the run ended other than succeeded (verified for deploy and rollback);
     rollouts watch and rollouts create --wait: the rollout ended failed or aborted
 10  ops run --wait: --timeout passed before the operation was final; runs watch and
     the run commands' --wait: --timeout passed before the run was final

A change that needs approval is not an error: the command prints the pending change,
notes "approval required" on stderr and exits 0.)";

int Run(int argc, char** argv) {
  CliState state;
  state.env = ProcessEnvironment();
  state.out = &std::cout;
  state.err = &std::cerr;

  CLI::App app{"storeplane: the operator CLI of the storeplane control plane", "storeplane"};
  app.fallthrough();  // global flags are accepted after subcommands too
  app.require_subcommand(1);
  app.footer(kFooter);

  GlobalFlags& flags = state.flags;
  app.add_option("--server", flags.server, "API base URL (env STOREPLANE_ADDR)");
  app.add_option("--token", flags.token, "Bearer token (env STOREPLANE_TOKEN); prefer --token-file");
  app.add_option("--token-file", flags.token_file, "File holding the bearer token (env STOREPLANE_TOKEN_FILE)");
  app.add_option("--ca-file", flags.ca_file, "PEM CA bundle to verify the server (env STOREPLANE_CA_FILE)");
  app.add_flag("--insecure", flags.insecure, "Skip TLS certificate verification (unsafe)");
  app.add_option("-o,--output", flags.output, "Output format: table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();
  app.add_option("--timeout", flags.timeout_seconds, "Request timeout in seconds")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();

  CLI::App* version = app.add_subcommand("version", "Print the CLI version");
  version->final_callback([&state] {
    state.action = [&state] {
      *state.out << "storeplane " << kVersion << "\n";
      return static_cast<int>(kExitOk);
    };
  });
  AddStoresCommands(app, state);
  AddWhoamiCommand(app, state);
  AddTokensCommands(app, state);
  AddChangesCommands(app, state);
  AddAuditCommands(app, state);
  AddAuthzCommands(app, state);
  AddOpsCommands(app, state);
  AddAgentsCommands(app, state);
  AddStoreHealthCommand(app, state);  // `stores health`, after AddStoresCommands
  AddRunsCommands(app, state);        // `deploy`, `rollback`, `runs`, `stores provision` etc.
  AddRolloutsCommands(app, state);
  AddEventsCommand(app, state);
  AddCompletionCommand(app, state);  // hidden; last, so that it sees every command

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    std::cerr << ErrorLine("usage", e.what()) << " (see storeplane --help)\n";
    return kExitUsage;
  }
  if (!state.action) {
    std::cerr << ErrorLine("usage", "no command given") << " (see storeplane --help)\n";
    return kExitUsage;
  }
  return state.action();
}

}  // namespace
}  // namespace storeplane::cli

int main(int argc, char** argv) {
  try {
    return storeplane::cli::Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << storeplane::cli::ErrorLine("unexpected error", e.what()) << "\n";
  }
  return storeplane::cli::kExitServerError;
}
