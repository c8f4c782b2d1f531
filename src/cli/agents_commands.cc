#include "cli/agents_commands.h"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <memory>

#include "cli/ops_commands.h"
#include "cli/output.h"
#include "cli/stores_commands.h"

namespace storeplane::cli {
namespace {

namespace json = boost::json;

constexpr const char* kDefaultEnrollmentTtl = "3600";

std::string StorePrefix(const std::string& store) { return "/v1/stores/" + PercentEncode(store); }

// --- agents list ----------------------------------------------------------------------

int RunAgentsList(CliState& state) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", "/v1/agents");
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& listing = std::get<JsonReply>(reply).body;
    auto it = listing.as_object().find("items");
    if (it == listing.as_object().end() || !it->value().is_array()) {
      return UnexpectedResponse(state, "the agent list has no \"items\" array");
    }
    const json::array& items = it->value().as_array();
    Print(state, FormatOf(session), listing,
          [&] { return items.empty() ? std::string("No agents found.\n") : AgentsTable(items); });
    return static_cast<int>(kExitOk);
  });
}

// --- agents enroll-token --------------------------------------------------------------

struct EnrollTokenArgs {
  std::string store;
  std::string ttl = kDefaultEnrollmentTtl;
};

int RunEnrollToken(CliState& state, const EnrollTokenArgs& args) {
  auto ttl = ParseSeconds(args.ttl);
  if (!ttl) return UsageError(state, "--ttl: " + ttl.error().message);
  return WithSession(state, [&](ApiSession& session) {
    json::object body;
    body["ttl_s"] = *ttl;
    auto reply = CallJson(state, session, "POST", EnrollmentTokensPath(args.store), json::serialize(body));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::object& token = std::get<JsonReply>(reply).body.as_object();
    auto text = token.find("token");
    if (text == token.end() || !text->value().is_string() || text->value().as_string().empty()) {
      return UnexpectedResponse(state, "the enrollment token has no \"token\" text");
    }
    Print(state, FormatOf(session), token, [&] { return std::string(text->value().as_string()) + "\n"; });
    *state.err << "storeplane: enrollment token " << OneLine(CellText(token, "id")) << " for store "
               << OneLine(CellText(token, "store_id")) << " expires " << OneLine(CellText(token, "expires_at"))
               << "; it enrolls one agent, once, and is not shown again\n";
    return static_cast<int>(kExitOk);
  });
}

// --- agents revoke --------------------------------------------------------------------

int RunRevoke(CliState& state, const std::string& store) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "DELETE", AgentPath(store));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& agent = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), agent, [&] {
      return "agent " + CellText(agent.as_object(), "agent_id") + " of store " +
             CellText(agent.as_object(), "store_id") + " revoked; it can no longer connect\n";
    });
    return static_cast<int>(kExitOk);
  });
}

// --- stores health --------------------------------------------------------------------

int RunHealthOne(CliState& state, const std::string& store) {
  return WithSession(state, [&](ApiSession& session) {
    auto reply = CallJson(state, session, "GET", StoreHealthPath(store));
    if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
    const json::value& health = std::get<JsonReply>(reply).body;
    Print(state, FormatOf(session), health, [&] { return HealthDetails(health.as_object()); });
    return static_cast<int>(kExitOk);
  });
}

int RunHealthAll(CliState& state) {
  return WithSession(state, [&](ApiSession& session) {
    json::array stores;
    auto collected = CollectPages(
        state, session, [](const std::string& cursor) { return StoresListPath(ListFilters{}, cursor); }, true, stores);
    if (auto* failure = std::get_if<Failure>(&collected)) return failure->exit_code;
    json::array healths;
    for (const auto& item : stores) {
      if (!item.is_object()) continue;
      const std::string id = CellText(item.as_object(), "id");
      auto reply = CallJson(state, session, "GET", StoreHealthPath(id));
      if (auto* failure = std::get_if<Failure>(&reply)) return failure->exit_code;
      healths.push_back(std::move(std::get<JsonReply>(reply).body));
    }
    json::object out;
    out["items"] = healths;
    Print(state, FormatOf(session), out,
          [&] { return healths.empty() ? std::string("No stores found.\n") : HealthTable(healths); });
    return static_cast<int>(kExitOk);
  });
}

}  // namespace

// --- pure helpers ---------------------------------------------------------------------

std::string AgentPath(const std::string& store) { return StorePrefix(store) + "/agent"; }
std::string EnrollmentTokensPath(const std::string& store) { return StorePrefix(store) + "/enrollment-tokens"; }
std::string StoreHealthPath(const std::string& store) { return StorePrefix(store) + "/health"; }

std::string ListText(const json::object& object, std::string_view key, std::string_view separator) {
  auto it = object.find(key);
  if (it == object.end() || !it->value().is_array() || it->value().as_array().empty()) return "<none>";
  std::string out;
  for (const auto& item : it->value().as_array()) {
    if (!out.empty()) out += separator;
    out += item.is_string() ? std::string(item.as_string()) : json::serialize(item);
  }
  return out;
}

std::string AgentsTable(const json::array& agents) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : agents) {
    if (!item.is_object()) continue;
    const json::object& agent = item.as_object();
    const bool revoked = CellText(agent, "revoked_at") != "<none>";
    rows.push_back({CellText(agent, "store_id"), CellText(agent, "agent_id"),
                    revoked ? std::string("revoked") : CellText(agent, "availability"), CellText(agent, "health"),
                    CellText(agent, "agent_version"), CellText(agent, "last_seen_at"),
                    ListText(agent, "allowed_operations", ",")});
  }
  return RenderTable({"STORE", "AGENT", "AVAILABILITY", "HEALTH", "VERSION", "LAST-SEEN", "ALLOWED"}, rows);
}

std::string HealthTable(const json::array& healths) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : healths) {
    if (!item.is_object()) continue;
    const json::object& health = item.as_object();
    rows.push_back({CellText(health, "store_id"), CellText(health, "health"), CellText(health, "availability"),
                    ListText(health, "reasons", ","), CellText(health, "release"), CellText(health, "last_seen_at")});
  }
  return RenderTable({"STORE", "HEALTH", "AVAILABILITY", "REASONS", "RELEASE", "LAST-SEEN"}, rows);
}

std::string HealthDetails(const json::object& health) {
  std::string out = RenderFields({{"store", CellText(health, "store_id")},
                                  {"health", CellText(health, "health")},
                                  {"reasons", ListText(health, "reasons")},
                                  {"availability", CellText(health, "availability")},
                                  {"last seen", CellText(health, "last_seen_at")},
                                  {"release", CellText(health, "release")},
                                  {"recorded isolation", CellText(health, "recorded_isolation")},
                                  {"reported isolation", CellText(health, "reported_isolation")}});
  std::vector<std::vector<std::string>> checks;
  if (auto it = health.find("checks"); it != health.end() && it->value().is_array()) {
    for (const auto& item : it->value().as_array()) {
      if (!item.is_object()) continue;
      const json::object& check = item.as_object();
      checks.push_back({CellText(check, "name"), CellText(check, "status"), CellText(check, "code")});
    }
  }
  out += "\nChecks:\n";
  out += checks.empty() ? std::string("  <none>\n") : RenderTable({"NAME", "STATUS", "CODE"}, checks);
  std::vector<std::vector<std::string>> successes;
  if (auto it = health.find("last_successes"); it != health.end() && it->value().is_array()) {
    for (const auto& item : it->value().as_array()) {
      if (!item.is_object()) continue;
      const json::object& success = item.as_object();
      successes.push_back(
          {CellText(success, "kind"), CellText(success, "name"), CellText(success, "at"), CellText(success, "ref")});
    }
  }
  out += "\nLast successes:\n";
  out += successes.empty() ? std::string("  <none>\n") : RenderTable({"KIND", "NAME", "AT", "REF"}, successes);
  return out;
}

// --- command registration -------------------------------------------------------------

void AddAgentsCommands(CLI::App& root, CliState& state) {
  CLI::App* agents = root.add_subcommand("agents", "List shop agents, create enrollment tokens, revoke agents");
  agents->require_subcommand(1);

  CLI::App* list = agents->add_subcommand("list", "List the agents of the stores you may read");
  list->final_callback([&state] { state.action = Guarded(state, [&state] { return RunAgentsList(state); }); });

  auto enroll = std::make_shared<EnrollTokenArgs>();
  CLI::App* enroll_token =
      agents->add_subcommand("enroll-token", "Create a one-time enrollment token for a store's agent (shown once)");
  enroll_token->add_option("store", enroll->store, "Store id")->required();
  enroll_token->add_option("--ttl", enroll->ttl, "Lifetime in seconds (or 30m, 12h, 7d)")->capture_default_str();
  enroll_token->footer(
      "In table output the token is the only line on stdout, and a note on stderr gives its\n"
      "expiry; -o json|yaml print the whole record with the token. Enrolling with it replaces\n"
      "the store's current agent.");
  enroll_token->final_callback(
      [&state, enroll] { state.action = Guarded(state, [&state, enroll] { return RunEnrollToken(state, *enroll); }); });

  auto revoke_store = std::make_shared<std::string>();
  CLI::App* revoke =
      agents->add_subcommand("revoke", "Revoke a store's agent; its queued operations fail (agent_revoked)");
  revoke->add_option("store", *revoke_store, "Store id")->required();
  revoke->final_callback([&state, revoke_store] {
    state.action = Guarded(state, [&state, revoke_store] { return RunRevoke(state, *revoke_store); });
  });
}

void AddStoreHealthCommand(CLI::App& root, CliState& state) {
  CLI::App* stores = root.get_subcommand("stores");
  auto store = std::make_shared<std::string>();
  CLI::App* health = stores->add_subcommand(
      "health", "Show every store's health (one request per store), or one store's checks and last successes");
  health->add_option("store", *store, "Store id (default: every store you may read)");
  health->final_callback([&state, store] {
    state.action =
        Guarded(state, [&state, store] { return store->empty() ? RunHealthAll(state) : RunHealthOne(state, *store); });
  });
}

}  // namespace storeplane::cli
