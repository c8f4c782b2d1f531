// Fleet rollouts: `storeplane rollouts create|list|get|pause|resume|abort|approve|watch`
// (POST/GET /v1/rollouts, GET /v1/rollouts/{id}[/targets], POST /v1/rollouts/{id}/<command>).
// `create` builds the spec from flags and checks their combinations before anything is
// sent; a 202 answer is a pending change (an approval rule holds the rollout) and exits 0.
// `watch` (and `create --wait`) follow the event stream (types=rollout, reconnecting with
// Last-Event-ID like `storeplane events`) and print one line per change of the rollout:
// exit 0 when it ends succeeded, kExitWaitFailed (9) when it ends failed or aborted.
// Waves are shown by their API number: wave 0 is the canary ("canary"), then "wave 1/N" ..
// "wave N/N", the numbers `approve --wave` takes. The pure helpers (bodies, paths, outcomes,
// rendering) are declared here to be tested without a server.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command_support.h"
#include "core/result.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

void AddRolloutsCommands(CLI::App& root, CliState& state);

// The flags of `rollouts create`; unset optionals are left out of the body (the server's
// defaults apply).
struct RolloutCreateArgs {
  std::string release;
  std::string environment;
  std::string isolation_mode;  // "" : any
  std::string selector;        // label selector text; "" : every store of the environment
  std::optional<int> canary;
  std::optional<double> growth_factor;
  std::optional<int> wave_size;
  std::optional<int> max_concurrent;
  std::optional<int> max_failures;
  std::optional<int> max_failure_percent;
  std::string between_waves;  // "" : not given (the server's default, none)
  std::optional<std::int64_t> pause_s;
  bool dry_run = false;
  bool wait = false;
  std::string idempotency_key;
};

// The POST /v1/rollouts body for the flags, or kInvalidArgument with a one-line message
// naming the flag: a bad release, isolation mode or selector, a value out of range, both or
// neither of --growth-factor and --wave-size, both --max-failures and --max-failure-percent,
// --pause-s without --between-waves pause or the reverse, --dry-run with --wait.
Result<boost::json::object> RolloutCreateBody(const RolloutCreateArgs& args);

// "/v1/rollouts", or "/v1/rollouts?dry_run=true".
std::string RolloutsCreatePath(bool dry_run);
struct RolloutFilters {
  std::string environment;
  std::string state;
  bool active_only = false;
  int limit = 0;  // 0: server default
};
// "/v1/rollouts" with ?environment=&state=&active=true&limit=&cursor= for what is set.
std::string RolloutsListPath(const RolloutFilters& filters, const std::string& cursor);
std::string RolloutPath(const std::string& id);
struct TargetFilters {
  std::optional<int> wave;
  std::string state;
};
// "/v1/rollouts/{id}/targets" with ?wave=&state=&cursor= for what is set.
std::string RolloutTargetsPath(const std::string& id, const TargetFilters& filters, const std::string& cursor);
// "/v1/rollouts/{id}/pause" (resume, abort, approve).
std::string RolloutCommandPath(const std::string& id, std::string_view command);
// pause/resume: {}; abort: {"rollback": bool}; approve: {"wave": N}.
boost::json::object RolloutCommandBody(std::string_view command, bool rollback, int wave);

// A rollout state name (core::ParseRolloutState) or a target state name (core::ParseTargetState);
// kInvalidArgument naming `flag` and the states otherwise.
Status CheckRolloutStateArg(std::string_view flag, std::string_view text);
Status CheckTargetStateArg(std::string_view flag, std::string_view text);

// Where a rollout stands: not final, succeeded, failed or aborted; kUnknown for a state this
// CLI does not know.
enum class RolloutOutcome { kUnfinished, kSucceeded, kEndedBadly, kUnknown };
RolloutOutcome OutcomeOf(const boost::json::object& rollout);

// "canary" for wave 0, "wave K/N" for the others (N: the last wave, wave_count - 1).
std::string WaveName(std::int64_t index, std::int64_t wave_count);
// "planned 10  succeeded 4  failed 0  skipped 1  in-flight 2  waiting 3", then the rollback
// counts and not_started when not zero.
std::string CountsText(const boost::json::object& counts);
// One line per wave: "wave 1/3  size 2  succeeded 2  ...", the current one of an unfinished
// rollout marked "<- current".
std::string WaveLines(const boost::json::object& rollout);
// The rollout as `create` and `get` show it: its fields, one per line, then its waves.
std::string RolloutDetails(const boost::json::object& rollout);
// ROLLOUT RELEASE ENVIRONMENT STATE WAVE SUCCEEDED FAILED PLANNED CREATED-BY CREATED.
std::string RolloutsTable(const boost::json::array& rollouts);
// STORE WAVE STATE SKIP-REASON DEPLOY-RUN DEPLOY-RESULT PREVIOUS ROLLBACK-RUN ROLLBACK-RESULT.
std::string RolloutTargetsTable(const boost::json::array& targets);
// The planned waves of a dry run: one line per wave with its size and, when `stores` has as
// many lists as there are waves, up to `max_ids` store ids of each ("... and K more").
std::string PlannedWavesText(const boost::json::object& rollout, const std::vector<std::vector<std::string>>& stores,
                             std::size_t max_ids);
// What `watch` prints for a rollout, without the time: "running  wave 1/3  planned ..." and,
// when set, the paused_from, ending and waiting_for. A new line is printed when this changes.
std::string ProgressText(const boost::json::object& rollout);
// "<updated_at>  <ProgressText>" (`fallback_time` without an updated_at).
std::string ProgressLine(const boost::json::object& rollout, const std::string& fallback_time);
// "queued pause for rollout rol_1 (running, wave 1/3)" from a command's 202 answer.
std::string CommandAcceptedLine(const boost::json::object& answer, std::string_view command);

}  // namespace storeplane::cli
