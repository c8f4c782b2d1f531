// `storeplane agents list|enroll-token|revoke`: the shop agents of the stores (one per
// store), their one-time enrollment tokens and their revocation; and `storeplane stores
// health [STORE]`, the stores' health as their agents report it. The pure rendering helpers
// are declared here so they can be tested without a server.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <string>
#include <string_view>

#include "cli/command_support.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

void AddAgentsCommands(CLI::App& root, CliState& state);
// Adds `health` to the `stores` command; call after AddStoresCommands.
void AddStoreHealthCommand(CLI::App& root, CliState& state);

// "/v1/stores/{store}/agent", "/v1/stores/{store}/enrollment-tokens", "/v1/stores/{store}/health"
std::string AgentPath(const std::string& store);
std::string EnrollmentTokensPath(const std::string& store);
std::string StoreHealthPath(const std::string& store);

// STORE AGENT AVAILABILITY HEALTH VERSION LAST-SEEN ALLOWED, one row per agent; a revoked
// agent's availability reads "revoked".
std::string AgentsTable(const boost::json::array& agents);
// STORE HEALTH AVAILABILITY REASONS RELEASE LAST-SEEN, one row per store health.
std::string HealthTable(const boost::json::array& healths);
// One store's health: its fields, then its checks (NAME STATUS CODE) and last successes
// (KIND NAME AT REF).
std::string HealthDetails(const boost::json::object& health);
// A JSON array of strings as "a, b, c" (`separator` between), "<none>" when empty or absent.
std::string ListText(const boost::json::object& object, std::string_view key, std::string_view separator = ", ");

}  // namespace storeplane::cli
