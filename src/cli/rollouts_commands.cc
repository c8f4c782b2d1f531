#include "cli/rollouts_commands.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>

#include "cli/changes_commands.h"
#include "cli/events_commands.h"
#include "cli/output.h"
#include "cli/runs_commands.h"
#include "cli/stores_commands.h"
#include "core/label_selector.h"
#include "core/rollout.h"
#include "core/time_format.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

constexpr std::int64_t kMaxPauseS = core::kMaxPauseMs / 1000;
constexpr std::size_t kMaxIdsPerWave = 10;  // dry run: store ids shown per wave

template <typename T, typename Name>
std::string Names(const std::vector<T>& values, Name name) {
  std::string names;
  for (const T& value : values) {
    if (!names.empty()) names += ", ";
    names += name(value);
  }
  return names;
}

std::string RolloutStateNames() {
  return Names(core::AllRolloutStates(), [](core::RolloutState s) { return std::string(core::ToString(s)); });
}

std::string TargetStateNames() {
  return Names(core::AllTargetStates(), [](core::TargetState s) { return std::string(core::ToString(s)); });
}

std::string NowText() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return core::FormatRfc3339Millis(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

const json::object* Child(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_object() ? &value->as_object() : nullptr;
}

std::int64_t IntOf(const json::object& object, std::string_view key, std::int64_t fallback = 0) {
  const auto* value = object.if_contains(key);
  if (value == nullptr) return fallback;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64()) return static_cast<std::int64_t>(value->as_uint64());
  return fallback;
}

bool HasInt(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && (value->is_int64() || value->is_uint64());
}

std::string Plural(std::int64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// "4 (canary 1, then growth factor 2)" from the spec's waves and the rollout's wave_count.
std::string WavesSpecText(const json::object& rollout) {
  std::string text = CellText(rollout, "wave_count");
  const json::object* spec = Child(rollout, "spec");
  const json::object* waves = spec != nullptr ? Child(*spec, "waves") : nullptr;
  if (waves == nullptr) return text;
  text += " (canary " + CellText(*waves, "canary_size");
  if (CellText(*waves, "growth_factor") != "<none>")
    text += ", then growth factor " + CellText(*waves, "growth_factor");
  if (CellText(*waves, "wave_size") != "<none>") text += ", then " + CellText(*waves, "wave_size") + " per wave";
  return text + ")";
}

std::string SelectorText(const json::object& rollout) {
  const json::object* spec = Child(rollout, "spec");
  const json::object* selector = spec != nullptr ? Child(*spec, "selector") : nullptr;
  if (selector == nullptr) return "environment " + CellText(rollout, "environment");
  std::string text = "environment " + CellText(*selector, "environment");
  if (CellText(*selector, "isolation_mode") != "<none>") text += ", isolation " + CellText(*selector, "isolation_mode");
  text +=
      ", labels " + (CellText(*selector, "labels") == "<none>" ? std::string("(any)") : CellText(*selector, "labels"));
  return text;
}

std::string BudgetText(const json::object& rollout) {
  std::string text;
  const json::object* spec = Child(rollout, "spec");
  const json::object* budget = spec != nullptr ? Child(*spec, "failure_budget") : nullptr;
  if (budget != nullptr && CellText(*budget, "max_failure_percent") != "<none>") {
    text = "max " + CellText(*budget, "max_failure_percent") + "% failed";
  } else if (budget != nullptr && CellText(*budget, "max_failures") != "<none>") {
    text = "max " + CellText(*budget, "max_failures") + " failed";
  }
  const std::string allowed = CellText(rollout, "allowed_failures");
  const std::string failed = CellText(rollout, "failed_deploys");
  if (allowed != "<none>" || failed != "<none>") {
    text += (text.empty() ? "(" : " (") + allowed + " allowed, " + failed + " failed so far)";
  }
  return text.empty() ? "<none>" : text;
}

std::string BetweenWavesText(const json::object& rollout) {
  const json::object* spec = Child(rollout, "spec");
  if (spec == nullptr) return "<none>";
  std::string text = CellText(*spec, "between_waves");
  if (text == "pause" && CellText(*spec, "pause_s") != "<none>") text += " " + CellText(*spec, "pause_s") + " s";
  return text;
}

std::string WaitingForText(const json::object& rollout) {
  const json::object* waiting = Child(rollout, "waiting_for");
  if (waiting == nullptr) return "<none>";
  std::string text = CellText(*waiting, "reason");
  if (CellText(*waiting, "until") != "<none>") text += " until " + CellText(*waiting, "until");
  return text;
}

std::string CurrentWaveText(const json::object& rollout) {
  if (!HasInt(rollout, "current_wave")) return "<none>";
  return WaveName(IntOf(rollout, "current_wave"), IntOf(rollout, "wave_count"));
}

// --- following a rollout --------------------------------------------------------------

// Follows the rollout on the event stream until it is final. Table: a timed line for the
// rollout as it is, then one per change (ProgressText). JSON/YAML: only the last rollout seen.
// 0 when it succeeded, kExitWaitFailed when it failed or was aborted.
int FollowRollout(CliState& state, ApiSession& session, json::object rollout) {
  const OutputFormat format = FormatOf(session);
  const bool table = format == OutputFormat::kTable;
  const std::string id = CellText(rollout, "id");
  std::string shown;
  std::int64_t version = -1;
  int exit_code = -1;
  const auto see = [&](const json::object& seen) {
    if (CellText(seen, "id") != id) return true;
    // An event older than what a fetch already showed (it was committed before the fetch
    // but delivered after it) changes nothing.
    const std::int64_t seen_version = IntOf(seen, "version", -1);
    if (seen_version >= 0 && seen_version < version) return true;
    version = std::max(version, seen_version);
    if (&seen != &rollout) rollout = seen;
    if (table && ProgressText(seen) != shown) {
      shown = ProgressText(seen);
      *state.out << ProgressLine(seen, NowText()) << "\n";
      state.out->flush();
    }
    return OutcomeOf(seen) == RolloutOutcome::kUnfinished;
  };
  // Fetches the rollout afresh: when a stream opens (nothing falls between the fetch and
  // the stream) and after a reset (events were lost).
  const auto refetch = [&] {
    auto reply = CallJson(state, session, "GET", RolloutPath(id));
    if (auto* failure = std::get_if<Failure>(&reply)) {
      exit_code = failure->exit_code;
      return false;
    }
    return see(std::get<JsonReply>(reply).body.as_object());
  };
  if (see(rollout)) {
    EventWatch watch;
    watch.types = "rollout";
    watch.on_open = refetch;
    watch.handle = [&](const std::string& type, const json::object& data) {
      if (type == "reset") return refetch();
      if (type != "rollout.created" && type != "rollout.updated") return true;
      const json::object* seen = Child(data, "rollout");
      return seen == nullptr || see(*seen);
    };
    const int watched = WatchEvents(state, session, watch);
    if (exit_code >= 0) return exit_code;
    if (watched != static_cast<int>(kExitOk)) return watched;
  }
  if (!table) Print(state, format, rollout, {});
  const std::string final_state = CellText(rollout, "state");
  switch (OutcomeOf(rollout)) {
    case RolloutOutcome::kSucceeded: return static_cast<int>(kExitOk);
    case RolloutOutcome::kEndedBadly: {
      std::string detail = Plural(IntOf(rollout, "failed_deploys"), "failed deploy") + " (" +
                           CellText(rollout, "allowed_failures") + " allowed)";
      if (CellText(rollout, "ending") == "abort") detail = "aborted by an operator; " + detail;
      *state.err << ErrorLine("rollout " + id + " " + final_state, detail) << "\n";
      return kExitWaitFailed;
    }
    case RolloutOutcome::kUnfinished:
    case RolloutOutcome::kUnknown: break;
  }
  return UnexpectedResponse(state,
                            "rollout " + id + " has state \"" + final_state + "\", which this CLI does not know");
}

// --- create ---------------------------------------------------------------------------

// The store ids of each wave of a dry run: the waves' own "stores" when the server sends
// them, or else the plan reproduced here (core::PlanWaves is deterministic) from the stores
// the caller may list, used only when its wave sizes are exactly the server's. Empty when
// neither is known; never an error.
std::vector<std::vector<std::string>> PlannedStores(ApiSession& session, const RolloutCreateArgs& args,
                                                    const json::object& rollout) {
  std::vector<std::int64_t> sizes;
  std::vector<std::vector<std::string>> from_server;
  if (const auto* waves = rollout.if_contains("waves"); waves != nullptr && waves->is_array()) {
    for (const auto& wave : waves->as_array()) {
      if (!wave.is_object()) return {};
      sizes.push_back(IntOf(wave.as_object(), "size", -1));
      if (const auto* stores = wave.as_object().if_contains("stores"); stores != nullptr && stores->is_array()) {
        std::vector<std::string> ids;
        for (const auto& s : stores->as_array()) {
          if (s.is_string()) ids.emplace_back(s.as_string());
        }
        from_server.push_back(std::move(ids));
      }
    }
  }
  if (sizes.empty()) return {};
  if (from_server.size() == sizes.size()) return from_server;

  ListFilters filters;
  filters.environment = args.environment;
  filters.isolation_mode = args.isolation_mode;
  filters.selector = args.selector;
  std::vector<std::string> ids;
  std::set<std::string> cursors;
  for (std::string cursor;;) {
    auto reply = session.Call("GET", StoresListPath(filters, cursor));
    if (!reply || reply->status != 200) return {};
    boost::system::error_code ec;
    json::value page = json::parse(reply->body, ec);
    if (ec || !page.is_object()) return {};
    const auto* items = page.as_object().if_contains("items");
    if (items == nullptr || !items->is_array()) return {};
    for (const auto& item : items->as_array()) {
      if (!item.is_object()) continue;
      if (CellText(item.as_object(), "state") == "decommissioned") continue;  // tombstones never match
      ids.push_back(CellText(item.as_object(), "id"));
    }
    const auto* next = page.as_object().if_contains("next_cursor");
    if (next == nullptr || !next->is_string() || next->as_string().empty()) break;
    cursor = std::string(next->as_string());
    if (!cursors.insert(cursor).second) return {};
  }
  core::WavePlanSpec spec;
  spec.canary_size = args.canary.value_or(1);
  spec.growth_factor = args.growth_factor;
  spec.wave_size = args.wave_size;
  auto plan = core::PlanWaves(std::move(ids), spec);
  if (!plan.ok() || plan->waves.size() != sizes.size()) return {};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (static_cast<std::int64_t>(plan->waves[i].size()) != sizes[i]) return {};
  }
  return plan->waves;
}

int RunCreate(CliState& state, const RolloutCreateArgs& args) {
  auto body = RolloutCreateBody(args);
  if (!body) return UsageError(state, body.error().message);
  return WithSession(state, [&](ApiSession& session) {
    HeaderList headers;
    if (!args.idempotency_key.empty()) headers.emplace_back("Idempotency-Key", args.idempotency_key);
    auto reply =
        CallJson(state, session, "POST", RolloutsCreatePath(args.dry_run), json::serialize(*body), std::move(headers));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const JsonReply& answer = std::get<JsonReply>(reply);
    const json::object& object = answer.body.as_object();
    // An approval rule holds the rollout: the answer is the pending change; nothing to wait for.
    if (answer.response.status == 202 || IsPendingChangeAnswer(object)) {
      return ReportPendingChange(state, FormatOf(session), answer.body);
    }
    if (CellText(object, "state") == "<none>") return UnexpectedResponse(state, "the rollout has no \"state\"");
    if (args.dry_run) {
      Print(state, FormatOf(session), answer.body, [&] {
        return "Dry run: nothing was created.\n" + RolloutDetails(object) + "\nPlanned waves:\n" +
               PlannedWavesText(object, PlannedStores(session, args, object), kMaxIdsPerWave);
      });
      return static_cast<int>(kExitOk);
    }
    if (CellText(object, "id") == "<none>") return UnexpectedResponse(state, "the rollout has no \"id\"");
    if (!args.wait) {
      Print(state, FormatOf(session), answer.body, [&] { return RolloutDetails(object); });
      return static_cast<int>(kExitOk);
    }
    if (FormatOf(session) == OutputFormat::kTable) *state.out << RolloutDetails(object) << "\n";
    return FollowRollout(state, session, object);
  });
}

// --- list / get / watch / commands ----------------------------------------------------

struct ListArgs {
  RolloutFilters filters;
  std::string cursor;
  bool all = false;
};

int RunList(CliState& state, const ListArgs& args) {
  if (!args.filters.state.empty()) {
    if (Status s = CheckRolloutStateArg("--state", args.filters.state); !s) return UsageError(state, s.error().message);
  }
  return RunPagedListing(state, {[&](const std::string& cursor) {
                                   return RolloutsListPath(args.filters, cursor.empty() ? args.cursor : cursor);
                                 },
                                 args.all, "rollouts", "--cursor", "No rollouts found.\n", RolloutsTable});
}

struct GetArgs {
  std::string id;
  bool targets = false;
  TargetFilters filters;
};

int RunGet(CliState& state, const GetArgs& args) {
  if (!args.filters.state.empty()) {
    if (Status s = CheckTargetStateArg("--state", args.filters.state); !s) return UsageError(state, s.error().message);
  }
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", RolloutPath(args.id));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& rollout = std::get<JsonReply>(reply).body;
    if (!args.targets) {
      Print(state, FormatOf(session), rollout, [&] { return RolloutDetails(rollout.as_object()); });
      return static_cast<int>(kExitOk);
    }
    json::array targets;
    auto pages = CollectPages(
        state, session, [&](const std::string& cursor) { return RolloutTargetsPath(args.id, args.filters, cursor); },
        true, targets);
    if (auto* failure = std::get_if<Failure>(&pages)) return failure->exit_code;
    Print(state, FormatOf(session), json::object{{"rollout", rollout}, {"targets", targets}}, [&] {
      return RolloutDetails(rollout.as_object()) + "\n" +
             (targets.empty() ? std::string("No targets match.\n") : RolloutTargetsTable(targets));
    });
    return static_cast<int>(kExitOk);
  });
}

int RunWatch(CliState& state, const std::string& id) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", RolloutPath(id));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    json::object rollout = std::get<JsonReply>(reply).body.as_object();
    if (CellText(rollout, "id") != id) {
      return UnexpectedResponse(state, "GET " + RolloutPath(id) + " returned another rollout");
    }
    if (FormatOf(session) == OutputFormat::kTable) {
      *state.out << "rollout " << id << " (release " << CellText(rollout, "release") << " to "
                 << CellText(rollout, "environment") << ")\n";
    }
    return FollowRollout(state, session, std::move(rollout));
  });
}

struct CommandArgs {
  std::string command;  // pause, resume, abort, approve
  std::string id;
  bool rollback = false;
  int wave = -1;
};

int RunCommand(CliState& state, const CommandArgs& args) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "POST", RolloutCommandPath(args.id, args.command),
                          json::serialize(RolloutCommandBody(args.command, args.rollback, args.wave)));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::object& answer = std::get<JsonReply>(reply).body.as_object();
    if (Child(answer, "rollout") == nullptr) {
      return UnexpectedResponse(state, "the answer to " + args.command + " has no \"rollout\"");
    }
    Print(state, FormatOf(session), answer, [&] { return CommandAcceptedLine(answer, args.command) + "\n"; });
    return static_cast<int>(kExitOk);
  });
}

constexpr const char* kWatchFooter =
    "Follows the event stream (GET /v1/events?types=rollout; reconnects and resumes like\n"
    "`storeplane events`) and prints a line each time the rollout's state, wave, counts or\n"
    "wait change; with -o json|yaml only the last rollout seen. Exits 0 when the rollout\n"
    "ended succeeded, 9 when it ended failed or aborted (the failed deploys on stderr).\n"
    "Waves are numbered as `approve --wave` takes them: the canary is wave 0.";

}  // namespace

// --- pure helpers ---------------------------------------------------------------------

Result<json::object> RolloutCreateBody(const RolloutCreateArgs& args) {
  if (Status s = CheckReleaseArg("--release", args.release); !s) return s.error();
  if (args.environment.empty()) return Error::Invalid("--environment: give the environment to roll out to", "");
  json::object selector{{"environment", args.environment}};
  if (!args.isolation_mode.empty()) {
    auto mode = ParseIsolationArg("--isolation-mode", args.isolation_mode);
    if (!mode) return mode.error();
    selector["isolation_mode"] = args.isolation_mode;
  }
  if (!args.selector.empty()) {
    auto parsed = core::LabelSelector::Parse(args.selector);
    if (!parsed.ok()) return Error::Invalid("--selector: " + parsed.error().message, "selector.labels");
    selector["labels"] = args.selector;
  }
  json::object waves;
  if (args.canary) {
    if (*args.canary < 1) return Error::Invalid("--canary must be at least 1", "waves.canary_size");
    waves["canary_size"] = *args.canary;
  }
  if (args.growth_factor && args.wave_size) {
    return Error::Invalid("--growth-factor and --wave-size exclude each other: give one", "waves");
  }
  if (!args.growth_factor && !args.wave_size) {
    return Error::Invalid("give --growth-factor F (each wave F times the last) or --wave-size N", "waves");
  }
  if (args.growth_factor) {
    const double factor = *args.growth_factor;
    if (!std::isfinite(factor) || factor <= 1.0 || factor > core::kMaxGrowthFactor) {
      return Error::Invalid("--growth-factor must be more than 1 and at most 100", "waves.growth_factor");
    }
    // An integral factor is sent as an integer ("growth_factor": 2), as the API shows it.
    if (factor == std::floor(factor)) {
      waves["growth_factor"] = static_cast<std::int64_t>(factor);
    } else {
      waves["growth_factor"] = factor;
    }
  }
  if (args.wave_size) {
    if (*args.wave_size < 1) return Error::Invalid("--wave-size must be at least 1", "waves.wave_size");
    waves["wave_size"] = *args.wave_size;
  }
  json::object body{{"release", args.release}, {"selector", std::move(selector)}, {"waves", std::move(waves)}};
  if (args.max_concurrent) {
    if (*args.max_concurrent < 1 || *args.max_concurrent > core::kMaxConcurrentRuns) {
      return Error::Invalid("--max-concurrent must be 1 to 10000", "max_concurrent");
    }
    body["max_concurrent"] = *args.max_concurrent;
  }
  if (args.max_failures && args.max_failure_percent) {
    return Error::Invalid("--max-failures and --max-failure-percent exclude each other: give one", "failure_budget");
  }
  if (args.max_failures) {
    if (*args.max_failures < 0)
      return Error::Invalid("--max-failures must be 0 or more", "failure_budget.max_failures");
    body["failure_budget"] = json::object{{"max_failures", *args.max_failures}};
  }
  if (args.max_failure_percent) {
    if (*args.max_failure_percent < 0 || *args.max_failure_percent > 100) {
      return Error::Invalid("--max-failure-percent must be 0 to 100", "failure_budget.max_failure_percent");
    }
    body["failure_budget"] = json::object{{"max_failure_percent", *args.max_failure_percent}};
  }
  if (!args.between_waves.empty()) {
    if (!core::ParseBetweenWaves(args.between_waves)) {
      return Error::Invalid(
          "--between-waves: one of none, pause, approval (not \"" + OneLine(args.between_waves) + "\")",
          "between_waves");
    }
    body["between_waves"] = args.between_waves;
  }
  if (args.between_waves == "pause" && !args.pause_s) {
    return Error::Invalid("--between-waves pause needs --pause-s N (seconds between waves)", "pause_s");
  }
  if (args.pause_s) {
    if (args.between_waves != "pause") return Error::Invalid("--pause-s needs --between-waves pause", "pause_s");
    if (*args.pause_s < 1 || *args.pause_s > kMaxPauseS) {
      return Error::Invalid("--pause-s must be 1 to 604800 (a week)", "pause_s");
    }
    body["pause_s"] = *args.pause_s;
  }
  if (args.dry_run && args.wait) return Error::Invalid("--dry-run creates nothing to --wait for: give one", "");
  return body;
}

std::string RolloutsCreatePath(bool dry_run) { return dry_run ? "/v1/rollouts?dry_run=true" : "/v1/rollouts"; }

std::string RolloutsListPath(const RolloutFilters& filters, const std::string& cursor) {
  return WithQuery("/v1/rollouts", {{"environment", filters.environment},
                                    {"state", filters.state},
                                    {"active", filters.active_only ? "true" : ""},
                                    {"limit", filters.limit > 0 ? std::to_string(filters.limit) : std::string()},
                                    {"cursor", cursor}});
}

std::string RolloutPath(const std::string& id) { return "/v1/rollouts/" + PercentEncode(id); }

std::string RolloutTargetsPath(const std::string& id, const TargetFilters& filters, const std::string& cursor) {
  return WithQuery(
      RolloutPath(id) + "/targets",
      {{"wave", filters.wave ? std::to_string(*filters.wave) : ""}, {"state", filters.state}, {"cursor", cursor}});
}

std::string RolloutCommandPath(const std::string& id, std::string_view command) {
  return RolloutPath(id) + "/" + std::string(command);
}

json::object RolloutCommandBody(std::string_view command, bool rollback, int wave) {
  if (command == "abort") return {{"rollback", rollback}};
  if (command == "approve") return {{"wave", wave}};
  return {};
}

Status CheckRolloutStateArg(std::string_view flag, std::string_view text) {
  if (core::ParseRolloutState(text)) return Status::Ok();
  return Error::Invalid(
      std::string(flag) + ": unknown rollout state \"" + OneLine(text) + "\"; one of " + RolloutStateNames(), "state");
}

Status CheckTargetStateArg(std::string_view flag, std::string_view text) {
  if (core::ParseTargetState(text)) return Status::Ok();
  return Error::Invalid(
      std::string(flag) + ": unknown target state \"" + OneLine(text) + "\"; one of " + TargetStateNames(), "state");
}

RolloutOutcome OutcomeOf(const json::object& rollout) {
  auto parsed = core::ParseRolloutState(CellText(rollout, "state"));
  if (!parsed) return RolloutOutcome::kUnknown;
  if (!core::IsFinal(*parsed)) return RolloutOutcome::kUnfinished;
  return *parsed == core::RolloutState::kSucceeded ? RolloutOutcome::kSucceeded : RolloutOutcome::kEndedBadly;
}

std::string WaveName(std::int64_t index, std::int64_t wave_count) {
  if (index == 0) return "canary";
  return "wave " + std::to_string(index) + "/" + std::to_string(wave_count > 1 ? wave_count - 1 : index);
}

std::string CountsText(const json::object& counts) {
  std::string text = "planned " + std::to_string(IntOf(counts, "planned")) + "  succeeded " +
                     std::to_string(IntOf(counts, "succeeded")) + "  failed " +
                     std::to_string(IntOf(counts, "failed")) + "  skipped " + std::to_string(IntOf(counts, "skipped")) +
                     "  in-flight " + std::to_string(IntOf(counts, "in_flight")) + "  waiting " +
                     std::to_string(IntOf(counts, "waiting"));
  for (const auto& [key, label] :
       std::vector<std::pair<std::string, std::string>>{{"rolled_back", "rolled-back"},
                                                        {"rollback_failed", "rollback-failed"},
                                                        {"not_rolled_back", "not-rolled-back"},
                                                        {"not_started", "not-started"}}) {
    if (const std::int64_t n = IntOf(counts, key); n != 0) text += "  " + label + " " + std::to_string(n);
  }
  return text;
}

std::string WaveLines(const json::object& rollout) {
  const auto* waves = rollout.if_contains("waves");
  if (waves == nullptr || !waves->is_array()) return {};
  const std::int64_t count = IntOf(rollout, "wave_count", static_cast<std::int64_t>(waves->as_array().size()));
  const bool unfinished = OutcomeOf(rollout) == RolloutOutcome::kUnfinished;
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : waves->as_array()) {
    if (!item.is_object()) continue;
    const json::object& wave = item.as_object();
    const std::int64_t index = IntOf(wave, "index");
    const json::object* counts = Child(wave, "counts");
    std::string text = CountsText(counts != nullptr ? *counts : json::object{});
    text = text.substr(text.find("  ") + 2);  // the size stands for "planned"
    if (unfinished && HasInt(rollout, "current_wave") && IntOf(rollout, "current_wave") == index) {
      text += "  <- current";
    }
    rows.push_back({WaveName(index, count), "size " + CellText(wave, "size"), text});
  }
  std::size_t name_width = 0;
  std::size_t size_width = 0;
  for (const auto& row : rows) {
    name_width = std::max(name_width, row[0].size());
    size_width = std::max(size_width, row[1].size());
  }
  std::string out;
  for (const auto& row : rows) {
    out += "  " + row[0] + std::string(name_width - row[0].size(), ' ') + "  " + row[1] +
           std::string(size_width - row[1].size(), ' ') + "  " + row[2] + "\n";
  }
  return out;
}

std::string RolloutDetails(const json::object& rollout) {
  std::string state = CellText(rollout, "state");
  if (CellText(rollout, "paused_from") != "<none>") state += " (from " + CellText(rollout, "paused_from") + ")";
  if (CellText(rollout, "ending") != "<none>") state += " (ending: " + CellText(rollout, "ending") + ")";
  std::vector<std::pair<std::string, std::string>> fields = {
      {"rollout", CellText(rollout, "id")},
      {"state", state},
      {"release", CellText(rollout, "release")},
      {"stores", SelectorText(rollout)},
      {"waves", WavesSpecText(rollout)},
      {"current wave", CurrentWaveText(rollout)},
      {"between waves", BetweenWavesText(rollout)},
      {"max concurrent", CellText(Child(rollout, "spec") ? *Child(rollout, "spec") : json::object{}, "max_concurrent")},
      {"failure budget", BudgetText(rollout)},
      {"waiting for", WaitingForText(rollout)},
  };
  if (CellText(rollout, "state") == "awaiting_approval") {
    fields.push_back({"approve with", "storeplane rollouts approve " + CellText(rollout, "id") + " --wave " +
                                          CellText(rollout, "awaiting_wave")});
  }
  if (CellText(rollout, "resume_at") != "<none>") fields.push_back({"next wave at", CellText(rollout, "resume_at")});
  const json::object* counts = Child(rollout, "counts");
  fields.push_back({"counts", CountsText(counts != nullptr ? *counts : json::object{})});
  fields.push_back({"created", CellText(rollout, "created_at") + " by " + CellText(rollout, "created_by")});
  fields.push_back({"updated", CellText(rollout, "updated_at")});
  fields.push_back({"finished", CellText(rollout, "finished_at")});
  return RenderFields(fields) + WaveLines(rollout);
}

std::string RolloutsTable(const json::array& rollouts) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : rollouts) {
    if (!item.is_object()) continue;
    const json::object& r = item.as_object();
    const json::object* counts = Child(r, "counts");
    const json::object none;
    const json::object& c = counts != nullptr ? *counts : none;
    rows.push_back({CellText(r, "id"), CellText(r, "release"), CellText(r, "environment"), CellText(r, "state"),
                    CurrentWaveText(r), CellText(c, "succeeded") + "/" + CellText(c, "planned"), CellText(c, "failed"),
                    CellText(r, "created_by"), CellText(r, "created_at")});
  }
  return RenderTable(
      {"ROLLOUT", "RELEASE", "ENVIRONMENT", "STATE", "WAVE", "SUCCEEDED", "FAILED", "CREATED-BY", "CREATED"}, rows);
}

std::string RolloutTargetsTable(const json::array& targets) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : targets) {
    if (!item.is_object()) continue;
    const json::object& t = item.as_object();
    rows.push_back({CellText(t, "store_id"), CellText(t, "wave"), CellText(t, "state"), CellText(t, "skip_reason"),
                    CellText(t, "deploy_run_id"), CellText(t, "deploy_final_state"), CellText(t, "previous_release"),
                    CellText(t, "rollback_run_id"), CellText(t, "rollback_final_state")});
  }
  return RenderTable({"STORE", "WAVE", "STATE", "SKIP-REASON", "DEPLOY-RUN", "DEPLOY-RESULT", "PREVIOUS",
                      "ROLLBACK-RUN", "ROLLBACK-RESULT"},
                     rows);
}

std::string PlannedWavesText(const json::object& rollout, const std::vector<std::vector<std::string>>& stores,
                             std::size_t max_ids) {
  const auto* waves = rollout.if_contains("waves");
  if (waves == nullptr || !waves->is_array()) return "  (the answer lists no waves)\n";
  const json::array& list = waves->as_array();
  const std::int64_t count = IntOf(rollout, "wave_count", static_cast<std::int64_t>(list.size()));
  const bool with_ids = stores.size() == list.size();
  std::string out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_object()) continue;
    const json::object& wave = list[i].as_object();
    out += "  " + WaveName(IntOf(wave, "index", static_cast<std::int64_t>(i)), count) + "  " +
           Plural(IntOf(wave, "size"), "store");
    if (with_ids) {
      const auto& ids = stores[i];
      std::string shown;
      for (std::size_t k = 0; k < ids.size() && k < max_ids; ++k) shown += (k == 0 ? "" : " ") + OneLine(ids[k]);
      if (ids.size() > max_ids) shown += " ... and " + std::to_string(ids.size() - max_ids) + " more";
      out += ": " + shown;
    }
    out += "\n";
  }
  if (!with_ids) out += "  (store ids not shown: the planned stores could not be listed)\n";
  return out;
}

std::string ProgressText(const json::object& rollout) {
  std::string text = CellText(rollout, "state");
  if (CellText(rollout, "paused_from") != "<none>") text += " (from " + CellText(rollout, "paused_from") + ")";
  text += "  " + CurrentWaveText(rollout);
  const json::object* counts = Child(rollout, "counts");
  text += "  " + CountsText(counts != nullptr ? *counts : json::object{});
  if (CellText(rollout, "ending") != "<none>") text += "  ending: " + CellText(rollout, "ending");
  if (WaitingForText(rollout) != "<none>") text += "  waiting for " + WaitingForText(rollout);
  if (CellText(rollout, "state") == "awaiting_approval") text += "  approve wave " + CellText(rollout, "awaiting_wave");
  return OneLine(text);
}

std::string ProgressLine(const json::object& rollout, const std::string& fallback_time) {
  const std::string updated = CellText(rollout, "updated_at");
  return OneLine(updated == "<none>" ? fallback_time : updated) + "  " + ProgressText(rollout);
}

std::string CommandAcceptedLine(const json::object& answer, std::string_view command) {
  const json::object* rollout = Child(answer, "rollout");
  const json::object none;
  const json::object& r = rollout != nullptr ? *rollout : none;
  std::string what(command);
  if (command == "approve")
    what += " of wave " + CellText(Child(answer, "command") ? *Child(answer, "command") : none, "wave");
  if (command == "abort") {
    const json::object* cmd = Child(answer, "command");
    if (cmd != nullptr && CellText(*cmd, "rollback") == "true") what += " with rollback of the current wave";
  }
  return OneLine("queued " + what + " for rollout " + CellText(r, "id") + " (now " + CellText(r, "state") + ", " +
                 CurrentWaveText(r) + "); it applies within about a second");
}

// --- command registration -------------------------------------------------------------

void AddRolloutsCommands(CLI::App& root, CliState& state) {
  CLI::App* rollouts = root.add_subcommand("rollouts", "Roll a release out to many stores in waves");
  rollouts->require_subcommand(1);

  auto create = std::make_shared<RolloutCreateArgs>();
  CLI::App* create_cmd =
      rollouts->add_subcommand("create", "Start a rollout of a release to the stores a selector picks");
  create_cmd->add_option("--release", create->release, "Release id: [A-Za-z0-9][A-Za-z0-9._+-]{0,63}")->required();
  create_cmd->add_option("--environment", create->environment, "The environment whose stores get the release")
      ->required();
  create_cmd->add_option("--isolation-mode", create->isolation_mode, "Only stores in this isolation mode")
      ->check(CLI::IsMember({"shared", "dedicated", "isolated"}));
  create_cmd->add_option("--selector", create->selector,
                         "Only stores whose labels match, e.g. 'tier=gold,region in (eu)'");
  create_cmd->add_option("--canary", create->canary, "Stores in the canary wave (wave 0); default 1");
  create_cmd->add_option("--growth-factor", create->growth_factor,
                         "Each wave after the canary is the last one times F, rounded up (1 < F <= 100)");
  create_cmd->add_option("--wave-size", create->wave_size, "Or: N stores per wave after the canary");
  create_cmd->add_option("--max-concurrent", create->max_concurrent, "Runs of the rollout at once; default 1");
  create_cmd->add_option("--max-failures", create->max_failures,
                         "Failed deploys tolerated before the rollout halts and rolls back; default 0");
  create_cmd->add_option("--max-failure-percent", create->max_failure_percent,
                         "Or: failed deploys tolerated, in percent of the planned stores (rounded down)");
  create_cmd
      ->add_option("--between-waves", create->between_waves,
                   "After each wave: go on (none), wait --pause-s (pause) or wait for approve (approval)")
      ->check(CLI::IsMember({"none", "pause", "approval"}));
  create_cmd->add_option("--pause-s", create->pause_s, "With --between-waves pause: seconds to wait (1-604800)");
  create_cmd->add_flag("--dry-run", create->dry_run, "Plan only: show the waves and their stores, create nothing");
  create_cmd->add_flag("--wait", create->wait, "Follow the rollout until it ends (see rollouts watch)");
  create_cmd->add_option("--idempotency-key", create->idempotency_key, "Idempotency-Key for safe retries");
  create_cmd->footer(
      "The caller needs rollout.create on every planned store. When an approval rule holds\n"
      "the rollout (by default in production), the pending change is printed, stderr says\n"
      "\"approval required: change chg_...\" and it exits 0 without waiting. With --wait it\n"
      "exits like `rollouts watch`: 0 when the rollout succeeded, 9 when it failed or was\n"
      "aborted.");
  create_cmd->final_callback(
      [&state, create] { state.action = Guarded(state, [&state, create] { return RunCreate(state, *create); }); });

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = rollouts->add_subcommand("list", "List rollouts, newest first");
  list->add_option("--environment", list_args->filters.environment, "Only rollouts to this environment");
  list->add_option("--state", list_args->filters.state, "Only rollouts in this state: " + RolloutStateNames());
  list->add_flag("--active", list_args->filters.active_only, "Only rollouts not final yet");
  list->add_option("--limit", list_args->filters.limit, "Page size (rollouts per request)")->check(CLI::PositiveNumber);
  list->add_option("--cursor", list_args->cursor, "Start at this page cursor (from a previous list)");
  list->add_flag("--all", list_args->all, "Follow next_cursor and list every rollout");
  list->final_callback([&state, list_args] {
    state.action = Guarded(state, [&state, list_args] { return RunList(state, *list_args); });
  });

  auto get_args = std::make_shared<GetArgs>();
  CLI::App* get = rollouts->add_subcommand("get", "Show a rollout and the progress of its waves");
  get->add_option("rollout", get_args->id, "Rollout id (rol_...)")->required();
  CLI::Option* targets = get->add_flag("--targets", get_args->targets, "Also list its stores (every page)");
  get->add_option("--wave", get_args->filters.wave, "With --targets: only this wave (0 is the canary)")
      ->check(CLI::NonNegativeNumber)
      ->needs(targets);
  get->add_option("--state", get_args->filters.state,
                  "With --targets: only stores in this state: " + TargetStateNames())
      ->needs(targets);
  get->footer("With --targets and -o json|yaml it prints {\"rollout\": ..., \"targets\": [...]}.");
  get->final_callback(
      [&state, get_args] { state.action = Guarded(state, [&state, get_args] { return RunGet(state, *get_args); }); });

  const auto add_command = [&](const std::string& name, const std::string& help) {
    auto args = std::make_shared<CommandArgs>();
    args->command = name;
    CLI::App* cmd = rollouts->add_subcommand(name, help);
    cmd->add_option("rollout", args->id, "Rollout id (rol_...)")->required();
    cmd->final_callback(
        [&state, args] { state.action = Guarded(state, [&state, args] { return RunCommand(state, *args); }); });
    return std::make_pair(cmd, args);
  };
  add_command("pause", "Pause a rollout: no new deploys; runs in flight finish");
  add_command("resume", "Resume a paused rollout");
  auto [abort_cmd, abort_args] =
      add_command("abort", "Abort a rollout: no new deploys; runs in flight finish, then it ends aborted");
  abort_cmd->add_flag("--rollback", abort_args->rollback, "Also roll back the current wave's deployed stores");
  auto [approve_cmd, approve_args] =
      add_command("approve", "Approve the next wave of a rollout awaiting approval (not by its creator)");
  approve_cmd->add_option("--wave", approve_args->wave, "The wave awaiting approval (as `rollouts get` shows it)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  for (CLI::App* cmd :
       {rollouts->get_subcommand("pause"), rollouts->get_subcommand("resume"), abort_cmd, approve_cmd}) {
    cmd->footer(
        "The command is queued (202) and the rollout applies it within about a second; a\n"
        "command that does not apply to the rollout now is refused (409, exit 5).");
  }

  auto watch_id = std::make_shared<std::string>();
  CLI::App* watch = rollouts->add_subcommand("watch", "Follow a rollout until it ends, one line per change");
  watch->add_option("rollout", *watch_id, "Rollout id (rol_...)")->required();
  watch->footer(kWatchFooter);
  watch->final_callback(
      [&state, watch_id] { state.action = Guarded(state, [&state, watch_id] { return RunWatch(state, *watch_id); }); });
}

}  // namespace storeplane::cli
