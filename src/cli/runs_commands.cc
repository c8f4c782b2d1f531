#include "cli/runs_commands.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <memory>

#include "cli/changes_commands.h"
#include "cli/output.h"
#include "core/operation.h"
#include "core/time_format.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

constexpr int kDefaultWaitTimeoutS = 1800;
constexpr int kMaxWaitTimeoutS = 86400;

const std::vector<core::IsolationMode>& AllIsolationModes() {
  static const std::vector<core::IsolationMode> kModes = {core::IsolationMode::kShared, core::IsolationMode::kDedicated,
                                                          core::IsolationMode::kIsolated};
  return kModes;
}

std::string IsolationModeNames() {
  std::string names;
  for (core::IsolationMode mode : AllIsolationModes()) {
    if (!names.empty()) names += ", ";
    names += core::ToString(mode);
  }
  return names;
}

std::string RunStateNames() {
  std::string names;
  for (core::RunState state : core::AllRunStates()) {
    if (!names.empty()) names += ", ";
    names += core::ToString(state);
  }
  return names;
}

std::string NowText() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return core::FormatRfc3339Millis(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

// --- following a run ------------------------------------------------------------------

// Polls the run until it is final. Table: its heading, then one timed line per state (the
// current one first). JSON/YAML: only the last run seen. Returns 0 when it ended well,
// kExitWaitFailed when it ended otherwise, kExitWaitTimedOut after `timeout_s`.
int FollowRun(CliState& state, ApiSession& session, json::object run, int timeout_s) {
  const OutputFormat format = FormatOf(session);
  const bool table = format == OutputFormat::kTable;
  const std::string id = CellText(run, "id");
  std::string shown_state = CellText(run, "state");
  bool url_shown = false;
  const auto show = [&](const json::object& seen) {
    const bool with_url = !url_shown && CellText(seen, "external_url") != "<none>";
    url_shown = url_shown || with_url;
    *state.out << StateChangeLine(seen, with_url, NowText()) << "\n";
    state.out->flush();
  };
  if (table) {
    *state.out << RunHeading(run) << "\n";
    show(run);
  }
  auto polled = PollUntil(
      state, session, RunPath(id), std::move(run), timeout_s,
      [](const json::object& seen) { return ProgressOf(seen) != RunProgress::kUnfinished; },
      [&](const json::object& seen) {
        if (!table || CellText(seen, "state") == shown_state) return;
        shown_state = CellText(seen, "state");
        show(seen);
      });
  if (auto* failure = std::get_if<Failure>(&polled)) return failure->exit_code;
  const Polled& seen = std::get<Polled>(polled);
  const std::string run_state = CellText(seen.last, "state");
  if (!table) Print(state, format, seen.last, {});
  if (seen.timed_out) {
    *state.err << ErrorLine("timed out", "run " + id + " is still " + run_state + " after " +
                                             std::to_string(timeout_s) + " s; follow it with: storeplane runs watch " +
                                             id)
               << "\n";
    return kExitWaitTimedOut;
  }
  switch (ProgressOf(seen.last)) {
    case RunProgress::kEndedWell: return static_cast<int>(kExitOk);
    case RunProgress::kEndedBadly: {
      const std::string detail = CellText(seen.last, "detail");
      *state.err << ErrorLine("run " + id + " " + run_state, detail == "<none>" ? "no detail given" : detail) << "\n";
      return kExitWaitFailed;
    }
    case RunProgress::kUnfinished:
    case RunProgress::kUnknown: break;
  }
  return UnexpectedResponse(state, "run " + id + " has kind \"" + CellText(seen.last, "kind") + "\" and state \"" +
                                       run_state + "\", which this CLI does not know");
}

// --- provision, decommission, migrate-isolation, deploy, rollback ---------------------

struct RequestArgs {
  core::RunKind kind = core::RunKind::kDeploy;
  std::string store;
  std::string release;                     // deploy --release
  std::optional<std::string> rollback_to;  // rollback --to
  std::string isolation;                   // migrate-isolation --to
  std::string idempotency_key;
  std::optional<std::string> break_glass;  // --break-glass REASON
  bool wait = false;
  int wait_timeout_s = kDefaultWaitTimeoutS;
};

int RunRequest(CliState& state, const RequestArgs& args) {
  std::optional<std::string> release;
  std::optional<core::IsolationMode> target;
  switch (args.kind) {
    case core::RunKind::kDeploy:
      if (Status s = CheckReleaseArg("--release", args.release); !s) return UsageError(state, s.error().message);
      release = args.release;
      break;
    case core::RunKind::kRollback:
      if (args.rollback_to) {
        if (Status s = CheckReleaseArg("--to", *args.rollback_to); !s) return UsageError(state, s.error().message);
        release = args.rollback_to;
      }
      break;
    case core::RunKind::kIsolationMigration: {
      auto mode = ParseIsolationArg("--to", args.isolation);
      if (!mode) return UsageError(state, mode.error().message);
      target = *mode;
      break;
    }
    case core::RunKind::kProvision:
    case core::RunKind::kDecommission: break;
  }
  if (args.break_glass) {
    if (Status s = CheckBreakGlassArg(*args.break_glass); !s) return UsageError(state, s.error().message);
  }
  return WithSession(state, [&](ApiSession& session) {
    HeaderList headers;
    if (!args.idempotency_key.empty()) headers.emplace_back("Idempotency-Key", args.idempotency_key);
    auto reply =
        CallJson(state, session, "POST", RunRequestPath(args.store, args.kind),
                 json::serialize(RunRequestBody(args.kind, release, target, args.break_glass)), std::move(headers));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const JsonReply& accepted = std::get<JsonReply>(reply);
    const json::object& answer = accepted.body.as_object();
    // An approval rule holds the request: the answer is the pending change; nothing to wait for.
    if (IsPendingChangeAnswer(answer)) return ReportPendingChange(state, FormatOf(session), accepted.body);
    if (CellText(answer, "id") == "<none>" || CellText(answer, "state") == "<none>") {
      return UnexpectedResponse(state, "the accepted run has no \"id\" or \"state\"");
    }
    if (!args.wait) {
      Print(state, FormatOf(session), answer, [&] { return RunLine(answer) + "\n"; });
      return static_cast<int>(kExitOk);
    }
    return FollowRun(state, session, answer, args.wait_timeout_s);
  });
}

// --- runs list / get / watch ----------------------------------------------------------

struct ListArgs {
  RunFilters filters;
  std::string cursor;
  bool all = false;
};

int RunList(CliState& state, const ListArgs& args) {
  if (!args.filters.state.empty()) {
    auto parsed = ParseRunStateArg("--state", args.filters.state);
    if (!parsed) return UsageError(state, parsed.error().message);
  }
  return RunPagedListing(state, {[&](const std::string& cursor) {
                                   return RunsListPath(args.filters, cursor.empty() ? args.cursor : cursor);
                                 },
                                 args.all, "runs", "--cursor", "No runs found.\n", RunsTable});
}

int RunGet(CliState& state, const std::string& id) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", RunPath(id));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& run = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), run, [&] { return RunDetails(run.as_object()); });
    return static_cast<int>(kExitOk);
  });
}

int RunWatch(CliState& state, const std::string& id, int timeout_s) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", RunPath(id));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    json::object run = std::get<JsonReply>(reply).body.as_object();
    if (CellText(run, "id") != id) return UnexpectedResponse(state, "GET " + RunPath(id) + " returned another run");
    return FollowRun(state, session, std::move(run), timeout_s);
  });
}

// --- registration ---------------------------------------------------------------------

constexpr const char* kWaitFooter =
    "Without --wait it exits 0 once the run is recorded (the pipeline is triggered after).\n"
    "With --wait it follows the run like `runs watch`: one line per state, polling every\n"
    "200 ms backing off to 1 s, until it is final: exit 0 when it ended well (succeeded;\n"
    "verified for deploy and rollback, after the health gate), 9 when it ended otherwise\n"
    "(failed, cancelled, timed_out, verification_failed; the detail on stderr), 10 when\n"
    "--timeout seconds passed first (the run goes on). Here --timeout is the wait; the\n"
    "per-request timeout is the global --timeout given before the command.\n"
    "When an approval rule holds the request, the pending change is printed, stderr says\n"
    "\"approval required: change chg_...\" and it exits 0 without waiting.";

// One lifecycle request command: STORE, then `extra` options, then --wait, --timeout and
// --idempotency-key.
CLI::App* AddRequestCommand(CLI::App& parent, CliState& state, const std::string& name, const std::string& help,
                            core::RunKind kind, const std::shared_ptr<RequestArgs>& args) {
  args->kind = kind;
  CLI::App* cmd = parent.add_subcommand(name, help);
  cmd->add_option("store", args->store, "Store id")->required();
  CLI::Option* wait = cmd->add_flag("--wait", args->wait, "Follow the run until it is final (see runs watch)");
  cmd->add_option("--timeout", args->wait_timeout_s, "With --wait: how long to wait, in seconds")
      ->check(CLI::Range(1, kMaxWaitTimeoutS))
      ->capture_default_str()
      ->needs(wait);
  cmd->add_option("--idempotency-key", args->idempotency_key, "Idempotency-Key for safe retries");
  cmd->add_option("--break-glass", args->break_glass,
                  "Outside the deploy windows: ask an approver to let this run start anyway, giving the reason "
                  "(10-500 characters; ignored when the windows are open)");
  cmd->footer(kWaitFooter);
  cmd->final_callback(
      [&state, args] { state.action = Guarded(state, [&state, args] { return RunRequest(state, *args); }); });
  return cmd;
}

}  // namespace

// --- pure helpers ---------------------------------------------------------------------

Status CheckReleaseArg(std::string_view flag, std::string_view release) {
  if (Status valid = core::ValidateReleaseId(release); !valid) {
    return Error::Invalid(std::string(flag) + " \"" + OneLine(release) + "\": " + valid.error().message, "release");
  }
  return Status::Ok();
}

Result<core::IsolationMode> ParseIsolationArg(std::string_view flag, std::string_view text) {
  if (auto mode = core::ParseIsolationMode(text)) return *mode;
  return Error::Invalid(
      std::string(flag) + ": unknown isolation mode \"" + OneLine(text) + "\"; one of " + IsolationModeNames(),
      "isolation_mode");
}

Result<core::RunState> ParseRunStateArg(std::string_view flag, std::string_view text) {
  if (auto parsed = core::ParseRunState(text)) return *parsed;
  return Error::Invalid(std::string(flag) + ": unknown run state \"" + OneLine(text) + "\"; one of " + RunStateNames(),
                        "state");
}

std::string RunRequestPath(const std::string& store, core::RunKind kind) {
  std::string tail;
  switch (kind) {
    case core::RunKind::kProvision: tail = "provision"; break;
    case core::RunKind::kDecommission: tail = "decommission"; break;
    case core::RunKind::kDeploy: tail = "deployments"; break;
    case core::RunKind::kRollback: tail = "rollbacks"; break;
    case core::RunKind::kIsolationMigration: tail = "isolation-migrations"; break;
  }
  return "/v1/stores/" + PercentEncode(store) + "/" + tail;
}

Status CheckBreakGlassArg(std::string_view reason) {
  if (reason.size() < 10 || reason.size() > 500) {
    return Error::Invalid("--break-glass: the reason must be 10 to 500 characters: say why this cannot wait",
                          "break_glass.reason");
  }
  return Status::Ok();
}

std::string DeployWindowsPath(const std::string& environment, const std::string& action) {
  return WithQuery("/v1/deploy-windows", {{"environment", environment}, {"action", action}});
}

std::string DeployWindowsTable(const json::object& answer) {
  std::vector<std::vector<std::string>> envs;
  if (const auto* items = answer.if_contains("environments"); items != nullptr && items->is_array()) {
    for (const auto& item : items->as_array()) {
      if (!item.is_object()) continue;
      const json::object& e = item.as_object();
      const std::string open = CellText(e, "open");
      envs.push_back({CellText(e, "environment"), open == "true" ? "open" : "closed", CellText(e, "next_open_at"),
                      CellText(e, "closes_at"), OneLine(CellText(e, "reason"))});
    }
  }
  std::string out = "Deploy windows for " + CellText(answer, "action") + " at " + CellText(answer, "now") + "\n";
  out += RenderTable({"ENVIRONMENT", "NOW", "NEXT-OPEN", "CLOSES", "REASON"}, envs);
  std::vector<std::vector<std::string>> windows;
  if (const auto* items = answer.if_contains("windows"); items != nullptr && items->is_array()) {
    for (const auto& item : items->as_array()) {
      if (!item.is_object()) continue;
      const json::object& w = item.as_object();
      auto joined = [&](std::string_view key) {
        std::string text;
        if (const auto* list = w.if_contains(key); list != nullptr && list->is_array()) {
          for (const auto& v : list->as_array()) {
            if (v.is_string()) text += (text.empty() ? "" : ",") + std::string(v.as_string());
          }
        }
        return text.empty() ? std::string("*") : text;
      };
      windows.push_back({CellText(w, "id"), CellText(w, "kind"), joined("environments"), joined("actions"),
                         CellText(w, "schedule"), CellText(w, "duration"), OneLine(CellText(w, "description"))});
    }
  }
  out += "\n";
  if (windows.empty()) {
    out += "No deploy windows are configured.\n";
  } else {
    out += RenderTable({"WINDOW", "KIND", "ENVIRONMENTS", "ACTIONS", "SCHEDULE (UTC)", "DURATION", "DESCRIPTION"},
                       windows);
  }
  return out;
}

json::object RunRequestBody(core::RunKind kind, const std::optional<std::string>& release,
                            std::optional<core::IsolationMode> target_isolation,
                            const std::optional<std::string>& break_glass_reason) {
  json::object body;
  if (break_glass_reason) body["break_glass"] = json::object{{"reason", *break_glass_reason}};
  if ((kind == core::RunKind::kDeploy || kind == core::RunKind::kRollback) && release) body["release"] = *release;
  if (kind == core::RunKind::kIsolationMigration && target_isolation) {
    body["isolation_mode"] = core::ToString(*target_isolation);
  }
  return body;
}

std::string RunsListPath(const RunFilters& filters, const std::string& cursor) {
  return WithQuery("/v1/runs", {{"store", filters.store},
                                {"rollout", filters.rollout},
                                {"state", filters.state},
                                {"active", filters.active_only ? "true" : ""},
                                {"limit", filters.limit > 0 ? std::to_string(filters.limit) : std::string()},
                                {"cursor", cursor}});
}

std::string RunPath(const std::string& run_id) { return "/v1/runs/" + PercentEncode(run_id); }

bool IsPendingChangeAnswer(const json::object& answer) {
  if (answer.contains("approval_rule")) return true;
  auto id = answer.find("id");
  return id != answer.end() && id->value().is_string() && id->value().as_string().starts_with("chg_");
}

RunProgress ProgressOf(std::string_view kind, std::string_view state) {
  auto parsed_kind = core::ParseRunKind(kind);
  auto parsed_state = core::ParseRunState(state);
  if (!parsed_kind || !parsed_state) return RunProgress::kUnknown;
  if (!core::IsFinal(*parsed_kind, *parsed_state)) return RunProgress::kUnfinished;
  return core::IsSuccess(*parsed_kind, *parsed_state) ? RunProgress::kEndedWell : RunProgress::kEndedBadly;
}

RunProgress ProgressOf(const json::object& run) { return ProgressOf(CellText(run, "kind"), CellText(run, "state")); }

std::string RunHeading(const json::object& run) {
  const std::string kind = CellText(run, "kind");
  std::string what = kind;
  if (kind == "deploy") what += " of " + CellText(run, "release");
  if (kind == "rollback") what += " to " + CellText(run, "release");
  if (kind == "isolation_migration") what += " to " + CellText(run, "target_isolation");
  return "run " + CellText(run, "id") + " (" + what + " on store " + CellText(run, "store_id") + ")";
}

std::string RunLine(const json::object& run) { return RunHeading(run) + ": " + CellText(run, "state"); }

std::string StateChangeLine(const json::object& run, bool with_url, const std::string& fallback_time) {
  const std::string updated = CellText(run, "updated_at");
  std::string line = (updated == "<none>" ? fallback_time : updated) + "  " + CellText(run, "state");
  if (const std::string detail = CellText(run, "detail"); detail != "<none>") line += ": " + detail;
  if (with_url) line += "  (" + CellText(run, "external_url") + ")";
  return OneLine(line);
}

std::string RunsTable(const json::array& runs) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : runs) {
    if (!item.is_object()) continue;
    const json::object& run = item.as_object();
    rows.push_back({CellText(run, "id"), CellText(run, "store_id"), CellText(run, "kind"), CellText(run, "state"),
                    CellText(run, "release"), CellText(run, "provider"), CellText(run, "requested_by"),
                    CellText(run, "created_at"), CellText(run, "finished_at")});
  }
  return RenderTable({"RUN", "STORE", "KIND", "STATE", "RELEASE", "PROVIDER", "REQUESTED-BY", "CREATED", "FINISHED"},
                     rows);
}

std::string RunDetails(const json::object& run) {
  std::string active = CellText(run, "active");
  if (active == "true" || active == "false") active = active == "true" ? "yes" : "no";
  return RenderFields({{"run", CellText(run, "id")},
                       {"store", CellText(run, "store_id")},
                       {"kind", CellText(run, "kind")},
                       {"rollout", CellText(run, "rollout_id")},
                       {"state", CellText(run, "state")},
                       {"active", active},
                       {"release", CellText(run, "release")},
                       {"previous release", CellText(run, "previous_release")},
                       {"target isolation", CellText(run, "target_isolation")},
                       {"provider", CellText(run, "provider")},
                       {"external id", CellText(run, "external_id")},
                       {"external url", CellText(run, "external_url")},
                       {"requested by", CellText(run, "requested_by")},
                       {"reason", OneLine(CellText(run, "reason"))},
                       {"detail", OneLine(CellText(run, "detail"))},
                       {"created", CellText(run, "created_at")},
                       {"updated", CellText(run, "updated_at")},
                       {"triggered", CellText(run, "triggered_at")},
                       {"gate opened", CellText(run, "gate_opened_at")},
                       {"finished", CellText(run, "finished_at")},
                       {"deadline", CellText(run, "deadline")}});
}

// --- command registration -------------------------------------------------------------

void AddRunsCommands(CLI::App& root, CliState& state) {
  CLI::App* stores = root.get_subcommand("stores");
  AddRequestCommand(*stores, state, "provision", "Provision a registered store through CI/CD (a provision run)",
                    core::RunKind::kProvision, std::make_shared<RequestArgs>());
  AddRequestCommand(*stores, state, "decommission", "Decommission a store through CI/CD (a decommission run)",
                    core::RunKind::kDecommission, std::make_shared<RequestArgs>());
  auto migrate = std::make_shared<RequestArgs>();
  CLI::App* migrate_cmd =
      AddRequestCommand(*stores, state, "migrate-isolation", "Move a store to a tighter isolation mode through CI/CD",
                        core::RunKind::kIsolationMigration, migrate);
  migrate_cmd->add_option("--to", migrate->isolation, "Target isolation mode: " + IsolationModeNames())->required();

  auto deploy = std::make_shared<RequestArgs>();
  CLI::App* deploy_cmd = AddRequestCommand(root, state, "deploy", "Deploy a release to a store through CI/CD",
                                           core::RunKind::kDeploy, deploy);
  deploy_cmd->add_option("--release", deploy->release, "Release id: [A-Za-z0-9][A-Za-z0-9._+-]{0,63}")->required();

  auto rollback = std::make_shared<RequestArgs>();
  CLI::App* rollback_cmd = AddRequestCommand(root, state, "rollback",
                                             "Roll a store back through CI/CD (default: its last known good release)",
                                             core::RunKind::kRollback, rollback);
  rollback_cmd->add_option("--to", rollback->rollback_to, "Release id to roll back to");

  auto windows_env = std::make_shared<std::string>();
  auto windows_action = std::make_shared<std::string>();
  CLI::App* windows = root.add_subcommand(
      "windows", "Show the deploy windows and freezes, and whether each environment is open now (UTC)");
  windows->add_option("--environment", *windows_env, "Only this environment");
  windows->add_option("--action", *windows_action,
                      "Decide for this action (default deploy.request; also rollback.request, store.provision, "
                      "store.decommission, isolation.migrate)");
  windows->final_callback([&state, windows_env, windows_action] {
    state.action = Guarded(state, [&state, windows_env, windows_action] {
      return WithSession(state, [&](ApiSession& session) {
        auto reply = CallJson(state, session, "GET", DeployWindowsPath(*windows_env, *windows_action));
        if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
        const json::value& body = std::get<JsonReply>(reply).body;
        if (!body.is_object()) return UnexpectedResponse(state, "the deploy windows answer is not an object");
        Print(state, FormatOf(session), body, [&] { return DeployWindowsTable(body.as_object()); });
        return static_cast<int>(kExitOk);
      });
    });
  });

  CLI::App* runs = root.add_subcommand("runs", "List, show and follow CI/CD pipeline runs");
  runs->require_subcommand(1);

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = runs->add_subcommand("list", "List pipeline runs, newest first");
  list->add_option("--store", list_args->filters.store, "Only runs of this store");
  list->add_option("--rollout", list_args->filters.rollout, "Only runs of this rollout (rol_...)");
  list->add_option("--state", list_args->filters.state, "Only runs in this state: " + RunStateNames());
  list->add_flag("--active", list_args->filters.active_only, "Only runs not final yet");
  list->add_option("--limit", list_args->filters.limit, "Page size (runs per request)")->check(CLI::PositiveNumber);
  list->add_option("--cursor", list_args->cursor, "Start at this page cursor (from a previous list)");
  list->add_flag("--all", list_args->all, "Follow next_cursor and list every run");
  list->final_callback([&state, list_args] {
    state.action = Guarded(state, [&state, list_args] { return RunList(state, *list_args); });
  });

  auto get_id = std::make_shared<std::string>();
  CLI::App* get = runs->add_subcommand("get", "Show one run");
  get->add_option("run", *get_id, "Run id (run_...)")->required();
  get->final_callback(
      [&state, get_id] { state.action = Guarded(state, [&state, get_id] { return RunGet(state, *get_id); }); });

  auto watch_id = std::make_shared<std::string>();
  auto watch_timeout = std::make_shared<int>(kDefaultWaitTimeoutS);
  CLI::App* watch = runs->add_subcommand("watch", "Follow a run until it is final, one line per state");
  watch->add_option("run", *watch_id, "Run id (run_...)")->required();
  watch->add_option("--timeout", *watch_timeout, "How long to wait, in seconds")
      ->check(CLI::Range(1, kMaxWaitTimeoutS))
      ->capture_default_str();
  watch->footer(
      "Prints the run, then a line with the time (the run's updated_at) for each state it\n"
      "reaches; with -o json|yaml only the last run seen. Exits 0 when the run ended well\n"
      "(succeeded; verified for deploy and rollback), 9 when it ended otherwise (the detail\n"
      "on stderr), 10 when --timeout seconds passed first (the run goes on).");
  watch->final_callback([&state, watch_id, watch_timeout] {
    state.action =
        Guarded(state, [&state, watch_id, watch_timeout] { return RunWatch(state, *watch_id, *watch_timeout); });
  });
}

}  // namespace storeplane::cli
