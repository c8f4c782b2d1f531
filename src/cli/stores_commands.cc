#include "cli/stores_commands.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <memory>
#include <set>

#include "cli/changes_commands.h"
#include "cli/events_commands.h"
#include "cli/output.h"
#include "core/label_selector.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

std::string StorePath(const std::string& id) { return "/v1/stores/" + PercentEncode(id); }

core::Labels LabelsOf(const json::object& store) {
  core::Labels labels;
  auto it = store.find("labels");
  if (it == store.end() || !it->value().is_object()) return labels;
  for (const auto& entry : it->value().as_object()) {
    if (entry.value().is_string()) labels[std::string(entry.key())] = std::string(entry.value().as_string());
  }
  return labels;
}

json::object LabelsJson(const core::Labels& labels) {
  json::object object;
  for (const auto& [key, value] : labels) object[key] = value;
  return object;
}

// --- stores list ----------------------------------------------------------------------

struct ListArgs {
  ListFilters filters;
  std::string cursor;
  bool all = false;
  bool watch = false;
};

// Whether a store (as the API shows it) passes the list's filters, for --watch.
bool PassesFilters(const json::object& store, const ListFilters& filters, const core::LabelSelector* selector) {
  if (!filters.environment.empty() && CellText(store, "environment") != filters.environment) return false;
  if (!filters.isolation_mode.empty() && CellText(store, "isolation_mode") != filters.isolation_mode) return false;
  if (!filters.state.empty() && CellText(store, "state") != filters.state) return false;
  return selector == nullptr || selector->Matches(LabelsOf(store));
}

int RunList(CliState& state, const ListArgs& args) {
  const int listed = RunPagedListing(
      state,
      {[&](const std::string& cursor) { return StoresListPath(args.filters, cursor.empty() ? args.cursor : cursor); },
       args.all, "stores", "--cursor", "No stores found.\n", StoresTable});
  if (!args.watch || listed != static_cast<int>(kExitOk)) return listed;
  std::optional<core::LabelSelector> selector;
  if (!args.filters.selector.empty()) {
    auto parsed = core::LabelSelector::Parse(args.filters.selector);
    if (!parsed.ok()) return UsageError(state, "--selector: " + parsed.error().message);
    selector = std::move(*parsed);
  }
  // Agent events carry no store: they are shown for stores known to pass the filters.
  auto passing = std::make_shared<std::set<std::string>>();
  const bool filtered = !args.filters.environment.empty() || !args.filters.isolation_mode.empty() ||
                        !args.filters.state.empty() || selector;
  EventWatch watch;
  watch.types = "store,agent";
  watch.show = [&](const std::string& type, const json::object& data) {
    const std::string store_id = CellText(data, "store_id");
    if (auto it = data.find("store"); it != data.end() && it->value().is_object()) {
      const bool passes = PassesFilters(it->value().as_object(), args.filters, selector ? &*selector : nullptr);
      if (passes) {
        passing->insert(store_id);
      } else if (passing->erase(store_id) == 0) {
        return false;  // neither passes now nor did before
      }
      return true;
    }
    (void)type;
    return !filtered || passing->contains(store_id);
  };
  return WithSession(state, [&](ApiSession& session) {
    if (filtered) {  // which stores pass now, for their agents' events
      json::array items;
      auto pages = CollectPages(
          state, session, [&](const std::string& cursor) { return StoresListPath(args.filters, cursor); }, true, items);
      if (auto* failure = std::get_if<Failure>(&pages)) return failure->exit_code;
      for (const auto& item : items) {
        if (item.is_object()) passing->insert(CellText(item.as_object(), "id"));
      }
    }
    return WatchEvents(state, session, watch);
  });
}

// --- stores get -----------------------------------------------------------------------

int RunGet(CliState& state, const std::string& id, bool watch) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", StorePath(id));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& store = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), store, [&] { return StoresTable(json::array{store}); });
    if (!watch) return static_cast<int>(kExitOk);
    EventWatch events;  // everything about this store the caller may read
    events.store_id = id;
    return WatchEvents(state, session, events);
  });
}

// --- stores register ------------------------------------------------------------------

struct RegisterArgs {
  std::string id;
  std::string name;
  std::string environment;
  std::string isolation_mode;
  std::vector<std::string> labels;
  std::string idempotency_key;
};

int RunRegister(CliState& state, const RegisterArgs& args) {
  auto labels = ParseLabelPairs(args.labels);
  if (!labels) return UsageError(state, labels.error().message);
  return WithSession(state, [&](ApiSession& session) {
    json::object body;
    body["id"] = args.id;
    if (!args.name.empty()) body["name"] = args.name;
    body["environment"] = args.environment;
    body["isolation_mode"] = args.isolation_mode;
    if (!labels->empty()) body["labels"] = LabelsJson(labels.value());
    std::vector<std::pair<std::string, std::string>> headers;
    if (!args.idempotency_key.empty()) headers.emplace_back("Idempotency-Key", args.idempotency_key);
    auto reply = CallJson(state, session, "POST", "/v1/stores", json::serialize(body), std::move(headers));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const JsonReply& created = std::get<JsonReply>(reply);
    if (created.response.status == 202) return ReportPendingChange(state, FormatOf(session), created.body);
    const json::value& store = created.body;
    Print(state, FormatOf(session), store,
          [&] { return "store " + CellText(store.as_object(), "id") + " registered\n"; });
    return static_cast<int>(kExitOk);
  });
}

// --- stores label ---------------------------------------------------------------------

struct LabelArgs {
  std::string id;
  std::vector<std::string> edits;
  bool overwrite = false;
};

int RunLabel(CliState& state, const LabelArgs& args) {
  auto edit = ParseLabelEdit(args.edits);
  if (!edit) return UsageError(state, edit.error().message);
  return WithSession(state, [&](ApiSession& session) {
    auto current = CallJson(state, session, "GET", StorePath(args.id));
    if (auto* failure = std::get_if<Failure>(&current)) return failure->exit_code;
    const JsonReply& read = std::get<JsonReply>(current);
    const json::object& store = read.body.as_object();

    auto outcome = ApplyLabelEdit(LabelsOf(store), edit.value(), args.overwrite);
    if (!outcome) {
      *state.err << ErrorLine("label not changed", "store " + args.id + " " + outcome.error().message) << "\n";
      return ExitCodeForError(outcome.error());
    }
    for (const auto& key : outcome->missing) {
      *state.err << "storeplane: warning: store " << args.id << " has no label " << key << " to remove\n";
    }
    if (!outcome->changed) {
      Print(state, FormatOf(session), read.body, [&] { return "store " + args.id + " not labeled (no change)\n"; });
      return static_cast<int>(kExitOk);
    }

    std::string etag = read.response.Header("etag");
    if (etag.empty()) etag = "\"" + CellText(store, "version") + "\"";
    json::object patch;
    patch["labels"] = LabelsJson(outcome->labels);
    auto result = session.Call("PATCH", StorePath(args.id), json::serialize(patch),
                               {{"If-Match", etag}, {"Content-Type", "application/merge-patch+json"}});
    if (!result) return ReportTransport(state, result.error());
    const client::HttpResponse& response = result.value();
    if (response.status == 412) {
      Problem problem = ParseProblem(response);
      problem.title = "conflict";
      problem.detail = "store " + args.id + " was changed by someone else after it was read (version " +
                       CellText(store, "version") + "); nothing was changed, run the command again";
      problem.field.clear();
      *state.err << ProblemLine(problem) << "\n";
      return static_cast<int>(kExitConflict);
    }
    if (response.status < 200 || response.status >= 300) return ReportProblem(state, response);
    boost::system::error_code ec;
    json::value updated = json::parse(response.body, ec);
    if (ec || !updated.is_object()) {
      *state.err << ErrorLine("unexpected response", "PATCH returned a body that is not a JSON object") << "\n";
      return static_cast<int>(kExitServerError);
    }
    Print(state, FormatOf(session), updated, [&] { return "store " + args.id + " labeled\n"; });
    return static_cast<int>(kExitOk);
  });
}

// --- whoami ---------------------------------------------------------------------------

int RunWhoami(CliState& state) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", "/v1/whoami");
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& me = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), me, [&] {
      const json::object& object = me.as_object();
      std::string roles;
      if (auto it = object.find("roles"); it != object.end() && it->value().is_array()) {
        for (const auto& role : it->value().as_array()) {
          if (!roles.empty()) roles += ",";
          roles += role.is_string() ? std::string(role.as_string()) : json::serialize(role);
        }
      }
      if (roles.empty()) roles = "<none>";
      return RenderTable({"ID", "NAME", "KIND", "ROLES"},
                         {{CellText(object, "id"), CellText(object, "name"), CellText(object, "kind"), roles}});
    });
    return static_cast<int>(kExitOk);
  });
}

}  // namespace

// --- pure helpers ---------------------------------------------------------------------

std::string StoresListPath(const ListFilters& filters, const std::string& cursor) {
  return WithQuery("/v1/stores", {{"environment", filters.environment},
                                  {"isolation_mode", filters.isolation_mode},
                                  {"state", filters.state},
                                  {"selector", filters.selector},
                                  {"limit", filters.limit > 0 ? std::to_string(filters.limit) : std::string()},
                                  {"cursor", cursor}});
}

Result<LabelEdit> ParseLabelEdit(const std::vector<std::string>& args) {
  LabelEdit edit;
  std::set<std::string> removed;
  for (const auto& arg : args) {
    auto eq = arg.find('=');
    if (eq != std::string::npos) {
      std::string key = arg.substr(0, eq);
      if (key.empty()) return Error::Invalid("label \"" + arg + "\" has an empty key; use key=value or key-");
      auto [it, inserted] = edit.set.emplace(key, arg.substr(eq + 1));
      if (!inserted && it->second != arg.substr(eq + 1)) {
        return Error::Invalid("label key " + key + " is given twice with different values");
      }
    } else if (arg.size() > 1 && arg.back() == '-') {
      std::string key = arg.substr(0, arg.size() - 1);
      if (removed.insert(key).second) edit.remove.push_back(key);
    } else {
      return Error::Invalid("\"" + arg + "\" is not a label change; use key=value to set or key- to remove");
    }
  }
  for (const auto& key : edit.remove) {
    if (edit.set.count(key)) return Error::Invalid("label key " + key + " is both set and removed");
  }
  if (edit.set.empty() && edit.remove.empty()) return Error::Invalid("no label changes given");
  return edit;
}

Result<core::Labels> ParseLabelPairs(const std::vector<std::string>& args) {
  core::Labels labels;
  for (const auto& arg : args) {
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error::Invalid("label \"" + arg + "\" is not of the form key=value");
    }
    std::string key = arg.substr(0, eq);
    if (!labels.emplace(key, arg.substr(eq + 1)).second) return Error::Invalid("label key " + key + " is given twice");
  }
  return labels;
}

Result<LabelOutcome> ApplyLabelEdit(const core::Labels& current, const LabelEdit& edit, bool overwrite) {
  LabelOutcome outcome;
  outcome.labels = current;
  for (const auto& [key, value] : edit.set) {
    auto it = current.find(key);
    if (it != current.end() && it->second != value && !overwrite) {
      return Error{ErrorCode::kConflict,
                   "already has label " + key + "=" + it->second + "; pass --overwrite to set " + key + "=" + value,
                   key};
    }
    if (it == current.end() || it->second != value) outcome.changed = true;
    outcome.labels[key] = value;
  }
  for (const auto& key : edit.remove) {
    if (outcome.labels.erase(key) > 0) {
      outcome.changed = true;
    } else {
      outcome.missing.push_back(key);
    }
  }
  return outcome;
}

// --- command registration -------------------------------------------------------------

void AddStoresCommands(CLI::App& root, CliState& state) {
  CLI::App* stores = root.add_subcommand("stores", "Register, list, inspect and label stores");
  stores->require_subcommand(1);

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = stores->add_subcommand("list", "List stores, filtered by environment, isolation, state or labels");
  list->add_option("--environment", list_args->filters.environment, "Only stores in this environment");
  list->add_option("--isolation-mode", list_args->filters.isolation_mode, "Only stores with this isolation mode")
      ->check(CLI::IsMember({"shared", "dedicated", "isolated"}));
  list->add_option("--state", list_args->filters.state, "Only stores in this lifecycle state");
  list->add_option("-l,--selector", list_args->filters.selector, "Label selector, e.g. 'tier=gold,region!=eu'");
  list->add_option("--limit", list_args->filters.limit, "Page size (stores per request)")->check(CLI::PositiveNumber);
  list->add_option("--cursor", list_args->cursor, "Start at this page cursor (from a previous list)");
  list->add_flag("--all", list_args->all, "Follow next_cursor and list every matching store");
  list->add_flag("-w,--watch", list_args->watch,
                 "After listing, follow changes of the matching stores and their agents (Ctrl-C ends)");
  list->final_callback([&state, list_args] {
    state.action = Guarded(state, [&state, list_args] { return RunList(state, *list_args); });
  });

  auto get_id = std::make_shared<std::string>();
  auto get_watch = std::make_shared<bool>(false);
  CLI::App* get = stores->add_subcommand("get", "Show one store");
  get->add_option("id", *get_id, "Store id")->required();
  get->add_flag("-w,--watch", *get_watch,
                "Then follow everything that happens to the store: agent, runs, operations, changes (Ctrl-C ends)");
  get->final_callback([&state, get_id, get_watch] {
    state.action = Guarded(state, [&state, get_id, get_watch] { return RunGet(state, *get_id, *get_watch); });
  });

  auto reg = std::make_shared<RegisterArgs>();
  CLI::App* register_cmd = stores->add_subcommand(
      "register", "Register a new store (state: registered); exits 0 with a pending change when approval is needed");
  register_cmd->add_option("id", reg->id, "Store id: a DNS label, immutable and never reused")->required();
  register_cmd->add_option("--environment", reg->environment, "Environment (e.g. production, staging)")->required();
  register_cmd->add_option("--isolation-mode", reg->isolation_mode, "shared, dedicated or isolated")->required();
  register_cmd->add_option("--name", reg->name, "Display name (defaults to the id on the server)");
  register_cmd->add_option("-l,--label", reg->labels, "Label key=value (repeatable)");
  register_cmd->add_option("--idempotency-key", reg->idempotency_key, "Idempotency-Key for safe retries");
  register_cmd->final_callback(
      [&state, reg] { state.action = Guarded(state, [&state, reg] { return RunRegister(state, *reg); }); });

  auto label_args = std::make_shared<LabelArgs>();
  CLI::App* label = stores->add_subcommand("label", "Set (key=value) or remove (key-) labels of a store");
  label->add_option("id", label_args->id, "Store id")->required();
  label->add_option("changes", label_args->edits, "key=value to set, key- to remove")->required();
  label->add_flag("--overwrite", label_args->overwrite, "Allow changing the value of an existing label");
  label->footer(
      "Reads the store, then writes the full label set with If-Match on its version;\n"
      "if someone changed the store in between, nothing is changed and it exits 5.");
  label->final_callback([&state, label_args] {
    state.action = Guarded(state, [&state, label_args] { return RunLabel(state, *label_args); });
  });
}

void AddWhoamiCommand(CLI::App& root, CliState& state) {
  CLI::App* whoami = root.add_subcommand("whoami", "Show the principal the token authenticates as, and its roles");
  whoami->final_callback([&state] { state.action = Guarded(state, [&state] { return RunWhoami(state); }); });
}

}  // namespace storeplane::cli
