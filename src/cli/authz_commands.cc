#include "cli/authz_commands.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <memory>

#include "cli/output.h"
#include "cli/stores_commands.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

struct ExplainArgs {
  std::string principal;
  std::string action;
  std::string store;
  std::string environment;
  std::vector<std::string> labels;
};

int RunExplain(CliState& state, const ExplainArgs& args) {
  auto labels = ParseLabelPairs(args.labels);
  if (!labels) return UsageError(state, labels.error().message);
  if (!labels->empty() && args.environment.empty()) return UsageError(state, "-l/--label needs --environment");
  return WithSession(state, [&](ApiSession& session) {
    json::object body;
    body["principal"] = args.principal;
    body["action"] = args.action;
    if (!args.store.empty()) {
      body["target"] = json::object{{"store", args.store}};
    } else if (!args.environment.empty()) {
      json::object target{{"environment", args.environment}};
      if (!labels->empty()) {
        json::object object;
        for (const auto& [key, value] : labels.value()) object[key] = value;
        target["labels"] = std::move(object);
      }
      body["target"] = std::move(target);
    }
    auto reply = CallJson(state, session, "POST", "/v1/authz/explain", json::serialize(body));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& answer = std::get<JsonReply>(reply).body;
    if (!answer.as_object().contains("allowed") || !answer.at("allowed").is_bool()) {
      return UnexpectedResponse(state, "the explain answer has no boolean \"allowed\"");
    }
    Print(state, FormatOf(session), answer, [&] { return ExplainText(answer.as_object()); });
    return static_cast<int>(kExitOk);
  });
}

}  // namespace

std::string ExplainText(const json::object& answer) {
  auto allowed = answer.find("allowed");
  bool is_allowed = allowed != answer.end() && allowed->value().is_bool() && allowed->value().as_bool();
  std::string approval = "not needed";
  if (auto it = answer.find("approval"); it != answer.end() && it->value().is_object()) {
    const json::object& rule = it->value().as_object();
    std::string count = CellText(rule, "approvals");
    approval = count + " approval" + (count == "1" ? "" : "s") + " by role " + CellText(rule, "approver_role") +
               " (rule " + CellText(rule, "rule") + ")";
  }
  std::vector<std::pair<std::string, std::string>> fields = {
      {"decision", is_allowed ? "allowed" : "denied"},
      {"rule", CellText(answer, "rule")},
      {"reason", CellText(answer, "reason")},
  };
  if (is_allowed) fields.emplace_back("approval", approval);
  return RenderFields(fields);
}

void AddAuthzCommands(CLI::App& root, CliState& state) {
  CLI::App* authz = root.add_subcommand("authz", "Ask the server's policy questions, without acting");
  authz->require_subcommand(1);

  auto args = std::make_shared<ExplainArgs>();
  CLI::App* explain =
      authz->add_subcommand("explain", "Would PRINCIPAL be allowed ACTION on a target? Which rule decides?");
  explain->add_option("--principal", args->principal, "Principal id, e.g. alice")->required();
  explain->add_option("--action", args->action, "Action name from the catalog, e.g. store.register")->required();
  CLI::Option* store = explain->add_option("--store", args->store, "Target: an existing store");
  CLI::Option* environment =
      explain->add_option("--environment", args->environment, "Target: an environment (with -l, labels)");
  explain->add_option("-l,--label", args->labels, "Target label key=value (repeatable; with --environment)");
  store->excludes(environment);
  explain->footer(
      "Without --store or --environment the action is explained without a target.\n"
      "Exits 0 whether the answer is allowed or denied.");
  explain->final_callback(
      [&state, args] { state.action = Guarded(state, [&state, args] { return RunExplain(state, *args); }); });
}

}  // namespace storeplane::cli
