// The store lifecycle through CI/CD pipeline runs: `stores provision|decommission|
// migrate-isolation`, `deploy`, `rollback` (POST /v1/stores/{id}/..., answered 202 with a run,
// or with a pending change when an approval rule holds the request) and `runs list|get|watch`
// (GET /v1/runs, /v1/runs/{id}). Releases, isolation modes and run states are checked locally
// before anything is sent. `--wait` and `runs watch` poll the run until it is final: exit 0
// when it ended well (succeeded, or verified for deploy and rollback), kExitWaitFailed (9)
// otherwise, kExitWaitTimedOut (10) when the wait's --timeout passed first. The pure helpers
// (paths, bodies, parsing, outcomes, rendering) are declared here to be tested without a server.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "cli/command_support.h"
#include "core/pipeline_run.h"
#include "core/result.h"
#include "core/store.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

// Adds `deploy`, `rollback`, `runs` and `windows` to `root`, and provision, decommission and
// migrate-isolation to its `stores` command: call after AddStoresCommands.
void AddRunsCommands(CLI::App& root, CliState& state);

// A release id as CI/CD names it (core::ValidateReleaseId); kInvalidArgument naming `flag`.
Status CheckReleaseArg(std::string_view flag, std::string_view release);
// shared, dedicated or isolated; kInvalidArgument naming `flag` and the modes otherwise.
Result<core::IsolationMode> ParseIsolationArg(std::string_view flag, std::string_view text);
// A run state name (core::ParseRunState); kInvalidArgument naming `flag` and the states.
Result<core::RunState> ParseRunStateArg(std::string_view flag, std::string_view text);

// "/v1/stores/{store}/provision", ".../decommission", ".../deployments", ".../rollbacks",
// ".../isolation-migrations".
std::string RunRequestPath(const std::string& store, core::RunKind kind);
// {} for provision and decommission (and a rollback without a target), {"release": R} for
// deploy and rollback, {"isolation_mode": M} for an isolation migration.
// With `break_glass_reason`, also {"break_glass": {"reason": ...}} (any kind).
boost::json::object RunRequestBody(core::RunKind kind, const std::optional<std::string>& release,
                                   std::optional<core::IsolationMode> target_isolation,
                                   const std::optional<std::string>& break_glass_reason = std::nullopt);
// A --break-glass reason: 10..500 bytes (the server also refuses secret-looking words).
Status CheckBreakGlassArg(std::string_view reason);
// "/v1/deploy-windows" with ?environment=&action= for what is set.
std::string DeployWindowsPath(const std::string& environment, const std::string& action);
// The table of `storeplane windows`: one line per environment, then the windows.
std::string DeployWindowsTable(const boost::json::object& answer);

struct RunFilters {
  std::string store;
  std::string rollout;  // only the runs of this rollout (rol_...)
  std::string state;
  bool active_only = false;
  int limit = 0;  // 0: server default
};
// "/v1/runs" with ?store=&rollout=&state=&active=true&limit=&cursor= for what is set.
std::string RunsListPath(const RunFilters& filters, const std::string& cursor);
std::string RunPath(const std::string& run_id);

// Whether a 202 answer is a pending change request (an approval rule holds the request)
// rather than a run.
bool IsPendingChangeAnswer(const boost::json::object& answer);

// Where a run stands, from its kind and state (core::IsFinal, core::IsSuccess). kUnknown
// for a kind or state this CLI does not know.
enum class RunProgress { kUnfinished, kEndedWell, kEndedBadly, kUnknown };
RunProgress ProgressOf(std::string_view kind, std::string_view state);
RunProgress ProgressOf(const boost::json::object& run);

// "run run_1 (deploy of r42 on store s1)": what the run does. Rollbacks read "rollback to
// R", isolation migrations "isolation_migration to M".
std::string RunHeading(const boost::json::object& run);
// RunHeading then ": <state>".
std::string RunLine(const boost::json::object& run);
// One state of a watched run: "<updated_at>  <state>", then its detail and the pipeline's
// URL when `with_url`; `fallback_time` when the run has no updated_at.
std::string StateChangeLine(const boost::json::object& run, bool with_url, const std::string& fallback_time);
// RUN STORE KIND STATE RELEASE PROVIDER REQUESTED-BY CREATED FINISHED, one row per run.
std::string RunsTable(const boost::json::array& runs);
// Every field of one run, one per line.
std::string RunDetails(const boost::json::object& run);

}  // namespace storeplane::cli
