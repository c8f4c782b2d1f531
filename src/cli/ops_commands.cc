#include "cli/ops_commands.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <memory>
#include <set>

#include "cli/changes_commands.h"
#include "cli/output.h"
#include "cli/tokens_commands.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

constexpr int kDefaultExpiresInS = 300;
constexpr int kDefaultWaitTimeoutS = 120;

std::string CatalogNames() {
  std::string names;
  for (core::OperationName name : core::AllOperationNames()) {
    if (!names.empty()) names += ", ";
    names += core::ToString(name);
  }
  return names;
}

std::string CacheTypeNames() {
  std::string names;
  for (core::CacheType type : core::AllCacheTypes()) {
    if (!names.empty()) names += ", ";
    names += core::ToString(type);
  }
  return names;
}

std::string Joined(const json::value& value, std::string_view separator = ", ") {
  if (!value.is_array()) return value.is_string() ? std::string(value.as_string()) : json::serialize(value);
  std::string out;
  for (const auto& item : value.as_array()) {
    if (!out.empty()) out += separator;
    out += item.is_string() ? std::string(item.as_string()) : json::serialize(item);
  }
  return out;
}

std::string YesNo(const json::value& value) {
  if (value.is_bool()) return value.as_bool() ? "yes" : "no";
  return json::serialize(value);
}

// The params of an operation, compact: "types=config,full_page", or "<none>".
std::string ParamsText(const json::object& operation) {
  auto it = operation.find("params");
  if (it == operation.end() || !it->value().is_object() || it->value().as_object().empty()) return "<none>";
  std::string out;
  for (const auto& entry : it->value().as_object()) {
    if (!out.empty()) out += " ";
    out += std::string(entry.key()) + "=" + Joined(entry.value(), ",");
  }
  return out;
}

const json::object* AsObject(const json::value& value) { return value.is_object() ? &value.as_object() : nullptr; }

// --- ops run --------------------------------------------------------------------------

struct RunArgs {
  std::string store;
  std::string name;
  std::vector<std::string> params;
  std::string expires_in = std::to_string(kDefaultExpiresInS);
  std::string idempotency_key;
  bool wait = false;
  int wait_timeout_s = kDefaultWaitTimeoutS;
};

// Prints a final operation and returns the exit code its state stands for.
int ReportFinal(const CliState& state, OutputFormat format, const json::object& operation) {
  const std::string op_state = CellText(operation, "state");
  Print(state, format, operation, [&] { return OperationDetails(operation); });
  if (op_state == "succeeded") return static_cast<int>(kExitOk);
  std::string code = CellText(operation, "code");
  *state.err << ErrorLine("operation " + CellText(operation, "id") + " " + op_state,
                          code == "<none>" ? std::string("no failure code given") : code)
             << "\n";
  return kExitOperationFailed;
}

int WaitForFinal(CliState& state, ApiSession& session, const RunArgs& args, json::object operation) {
  const std::string id = CellText(operation, "id");
  auto polled = PollUntil(state, session, OperationPath(args.store, id), std::move(operation), args.wait_timeout_s,
                          [](const json::object& op) { return IsFinalStateText(CellText(op, "state")); });
  if (auto* failure = std::get_if<Failure>(&polled)) return failure->exit_code;
  const Polled& seen = std::get<Polled>(polled);
  if (seen.timed_out) {
    if (FormatOf(session) != OutputFormat::kTable) Print(state, FormatOf(session), seen.last, {});
    *state.err << ErrorLine("timed out", "operation " + id + " is still " + CellText(seen.last, "state") + " after " +
                                             std::to_string(args.wait_timeout_s) +
                                             " s; follow it with: storeplane ops get " + args.store + " " + id)
               << "\n";
    return kExitWaitTimedOut;
  }
  return ReportFinal(state, FormatOf(session), seen.last);
}

int RunRun(CliState& state, const RunArgs& args) {
  auto name = ParseOperationArg(args.name);
  if (!name) return UsageError(state, name.error().message);
  auto params = ParseOperationParams(*name, args.params);
  if (!params) return UsageError(state, params.error().message);
  auto expires_in = ParseSeconds(args.expires_in);
  if (!expires_in) return UsageError(state, "--expires-in: " + expires_in.error().message);
  return WithSession(state, [&](ApiSession& session) {
    HeaderList headers;
    if (!args.idempotency_key.empty()) headers.emplace_back("Idempotency-Key", args.idempotency_key);
    auto reply = CallJson(state, session, "POST", OperationsPath(args.store, 0, ""),
                          json::serialize(OperationRequestBody(*name, *params, *expires_in)), std::move(headers));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const JsonReply& accepted = std::get<JsonReply>(reply);
    const json::object& operation = accepted.body.as_object();
    // A policy that holds the operation for approval answers with the pending change.
    if (operation.contains("approval_rule")) return ReportPendingChange(state, FormatOf(session), accepted.body);
    if (CellText(operation, "id") == "<none>" || CellText(operation, "state") == "<none>") {
      return UnexpectedResponse(state, "the accepted operation has no \"id\" or \"state\"");
    }
    if (!args.wait) {
      Print(state, FormatOf(session), operation, [&] { return OperationLine(operation) + "\n"; });
      return static_cast<int>(kExitOk);
    }
    if (FormatOf(session) == OutputFormat::kTable) {
      *state.out << OperationLine(operation) << "\n";
      state.out->flush();
    }
    return WaitForFinal(state, session, args, operation);
  });
}

// --- ops list / get -------------------------------------------------------------------

struct ListArgs {
  std::string store;
  int limit = 0;
  std::string cursor;
  bool all = false;
};

int RunList(CliState& state, const ListArgs& args) {
  return RunPagedListing(state, {[&](const std::string& cursor) {
                                   return OperationsPath(args.store, args.limit, cursor.empty() ? args.cursor : cursor);
                                 },
                                 args.all, "operations", "--cursor", "No operations found.\n", OperationsTable});
}

int RunGet(CliState& state, const std::string& store, const std::string& id) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", OperationPath(store, id));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& operation = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), operation, [&] { return OperationDetails(operation.as_object()); });
    return static_cast<int>(kExitOk);
  });
}

}  // namespace

// --- pure helpers ---------------------------------------------------------------------

Result<core::OperationName> ParseOperationArg(std::string_view text) {
  if (auto name = core::ParseOperationName(text)) return *name;
  return Error::Invalid("unknown operation \"" + std::string(text) + "\"; the catalog has " + CatalogNames(), "name");
}

Result<core::OperationParams> ParseOperationParams(core::OperationName name, const std::vector<std::string>& args) {
  core::OperationParams params;
  std::set<core::CacheType> seen;
  for (const auto& arg : args) {
    const auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error::Invalid("--param \"" + arg + "\" is not of the form key=value", "params");
    }
    const std::string key = arg.substr(0, eq);
    if (name != core::OperationName::kCacheFlush) {
      return Error::Invalid(std::string(core::ToString(name)) + " takes no params (got \"" + key + "\")", "params");
    }
    if (key != "types") {
      return Error::Invalid("cache.flush takes only --param types=TYPE[,TYPE...] (got \"" + key + "\")", "params");
    }
    std::string_view rest = std::string_view(arg).substr(eq + 1);
    if (rest.empty()) return Error::Invalid("--param types= names no cache type", "params.types");
    while (true) {
      const auto comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      auto type = core::ParseCacheType(item);
      if (!type) {
        return Error::Invalid("unknown cache type \"" + std::string(item) + "\"; one of " + CacheTypeNames(),
                              "params.types");
      }
      if (!seen.insert(*type).second) {
        return Error::Invalid("cache type " + std::string(item) + " is given twice", "params.types");
      }
      params.cache_types.push_back(*type);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  return params;
}

Result<std::int64_t> ParseSeconds(std::string_view text) {
  if (!text.empty() && text.size() <= 9 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t seconds = 0;
    for (char c : text) seconds = seconds * 10 + (c - '0');
    if (seconds == 0) return Error::Invalid("\"" + std::string(text) + "\" is zero seconds");
    return seconds;
  }
  return ParseDuration(text);
}

json::object OperationRequestBody(core::OperationName name, const core::OperationParams& params,
                                  std::int64_t expires_in_s) {
  json::object params_json;
  if (!params.cache_types.empty()) {
    json::array types;
    for (core::CacheType type : params.cache_types) types.emplace_back(core::ToString(type));
    params_json["types"] = std::move(types);
  }
  json::object body;
  body["name"] = core::ToString(name);
  body["params"] = std::move(params_json);
  body["expires_in_s"] = expires_in_s;
  return body;
}

std::string OperationsPath(const std::string& store, int limit, const std::string& cursor) {
  return WithQuery("/v1/stores/" + PercentEncode(store) + "/operations",
                   {{"limit", limit > 0 ? std::to_string(limit) : std::string()}, {"cursor", cursor}});
}

std::string OperationPath(const std::string& store, const std::string& operation_id) {
  return "/v1/stores/" + PercentEncode(store) + "/operations/" + PercentEncode(operation_id);
}

bool IsFinalStateText(std::string_view state) {
  auto parsed = core::ParseOperationState(state);
  return parsed && core::IsFinal(*parsed);
}

std::string OperationLine(const json::object& operation) {
  return "operation " + CellText(operation, "id") + " (" + CellText(operation, "name") + " on store " +
         CellText(operation, "store_id") + "): " + CellText(operation, "state");
}

std::string OperationsTable(const json::array& operations) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : operations) {
    const json::object* op = AsObject(item);
    if (op == nullptr) continue;
    rows.push_back({CellText(*op, "id"), CellText(*op, "name"), CellText(*op, "state"), CellText(*op, "code"),
                    CellText(*op, "requested_by"), CellText(*op, "created_at"), CellText(*op, "finished_at")});
  }
  return RenderTable({"OPERATION", "NAME", "STATE", "CODE", "REQUESTED-BY", "CREATED", "FINISHED"}, rows);
}

std::string ResultText(const json::value& result) {
  const json::object* fields = AsObject(result);
  if (fields == nullptr) return {};
  std::vector<std::pair<std::string, std::string>> lines;
  std::string tables;
  for (const auto& entry : *fields) {
    const std::string key(entry.key());
    const json::value& value = entry.value();
    if (key == "maintenance") {
      lines.emplace_back("maintenance", value.is_bool() ? (value.as_bool() ? "on" : "off") : json::serialize(value));
    } else if (key == "flushed") {
      lines.emplace_back("flushed", value.is_array() && value.as_array().empty() ? "<none>" : Joined(value));
    } else if (key == "schema_up_to_date") {
      lines.emplace_back("schema up to date", YesNo(value));
    } else if (key == "release") {
      lines.emplace_back("release", value.is_string() ? std::string(value.as_string()) : "<none>");
    } else if (key == "magento_version") {
      lines.emplace_back("magento version", value.is_string() ? std::string(value.as_string()) : "<none>");
    } else if (key == "checks" && value.is_array()) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& item : value.as_array()) {
        if (const json::object* check = AsObject(item)) {
          rows.push_back({CellText(*check, "name"), CellText(*check, "status"), CellText(*check, "code")});
        }
      }
      tables +=
          "\nChecks:\n" + (rows.empty() ? std::string("  <none>\n") : RenderTable({"NAME", "STATUS", "CODE"}, rows));
    } else if (key == "indexers" && value.is_array()) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& item : value.as_array()) {
        if (const json::object* indexer = AsObject(item)) {
          rows.push_back({CellText(*indexer, "id"), CellText(*indexer, "status")});
        }
      }
      tables += "\nIndexers:\n" + (rows.empty() ? std::string("  <none>\n") : RenderTable({"INDEXER", "STATUS"}, rows));
    } else {
      // A field this CLI does not know yet: shown as JSON rather than dropped.
      lines.emplace_back(key, value.is_string() ? std::string(value.as_string()) : json::serialize(value));
    }
  }
  return (lines.empty() ? std::string() : RenderFields(lines)) + tables;
}

std::string OperationDetails(const json::object& operation) {
  std::string out = RenderFields({{"operation", CellText(operation, "id")},
                                  {"store", CellText(operation, "store_id")},
                                  {"name", CellText(operation, "name")},
                                  {"params", ParamsText(operation)},
                                  {"state", CellText(operation, "state")},
                                  {"code", CellText(operation, "code")},
                                  {"requested by", CellText(operation, "requested_by")},
                                  {"created", CellText(operation, "created_at")},
                                  {"delivered", CellText(operation, "delivered_at")},
                                  {"finished", CellText(operation, "finished_at")},
                                  {"expires", CellText(operation, "expires_at")},
                                  {"timeout", CellText(operation, "timeout_s") + " s"},
                                  {"deliveries", CellText(operation, "delivery_count")}});
  auto result = operation.find("result");
  if (result != operation.end() && result->value().is_object()) {
    const std::string text = ResultText(result->value());
    out += "\nResult:\n";
    out += text.empty() ? std::string("  <none>\n") : text;
  }
  return out;
}

// --- command registration -------------------------------------------------------------

void AddOpsCommands(CLI::App& root, CliState& state) {
  CLI::App* ops = root.add_subcommand("ops", "Request operations of a store's agent and follow them");
  ops->require_subcommand(1);

  auto run_args = std::make_shared<RunArgs>();
  CLI::App* run = ops->add_subcommand("run", "Request one operation of the catalog (exits 0 once queued)");
  run->add_option("store", run_args->store, "Store id")->required();
  run->add_option("name", run_args->name, "Operation: " + CatalogNames())->required();
  run->add_option("--param", run_args->params, "cache.flush only: types=TYPE[,TYPE...] (repeatable; none: all)")
      ->allow_extra_args(false);  // one key=value per --param; what follows is positional
  run->add_option("--expires-in", run_args->expires_in,
                  "Seconds (or 5m, 1h) after which an unfinished operation expires")
      ->capture_default_str();
  run->add_option("--idempotency-key", run_args->idempotency_key, "Idempotency-Key for safe retries");
  CLI::Option* wait = run->add_flag("--wait", run_args->wait, "Poll until the operation is final and show its result");
  run->add_option("--timeout", run_args->wait_timeout_s, "With --wait: how long to wait, in seconds")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str()
      ->needs(wait);
  run->footer(
      "The name and params are checked against the catalog before anything is sent (exit 2).\n"
      "With --wait it polls every 200 ms, backing off to 1 s, until the operation is\n"
      "succeeded (exit 0), failed or expired (exit 9, the failure code on stderr); after\n"
      "--timeout seconds it gives up with exit 10 (the operation goes on). Here --timeout is\n"
      "the wait; the per-request timeout is the global --timeout given before `ops`.\n"
      "Cache types: " +
      CacheTypeNames());
  run->final_callback(
      [&state, run_args] { state.action = Guarded(state, [&state, run_args] { return RunRun(state, *run_args); }); });

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = ops->add_subcommand("list", "List a store's operations, newest first");
  list->add_option("store", list_args->store, "Store id")->required();
  list->add_option("--limit", list_args->limit, "Page size (operations per request)")->check(CLI::PositiveNumber);
  list->add_option("--cursor", list_args->cursor, "Start at this page cursor (from a previous list)");
  list->add_flag("--all", list_args->all, "Follow next_cursor and list every operation");
  list->final_callback([&state, list_args] {
    state.action = Guarded(state, [&state, list_args] { return RunList(state, *list_args); });
  });

  auto get_store = std::make_shared<std::string>();
  auto get_id = std::make_shared<std::string>();
  CLI::App* get = ops->add_subcommand("get", "Show one operation, with its result once final");
  get->add_option("store", *get_store, "Store id")->required();
  get->add_option("operation", *get_id, "Operation id (op_...)")->required();
  get->final_callback([&state, get_store, get_id] {
    state.action = Guarded(state, [&state, get_store, get_id] { return RunGet(state, *get_store, *get_id); });
  });
}

}  // namespace storeplane::cli
