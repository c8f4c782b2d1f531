// `storeplane changes list|get|approve|reject`: change requests, the actions that wait for
// approval by a principal other than the requester (POST /v1/changes/{id}/approve), and how
// a 202 "approval needed" answer of any mutating command is shown.
#pragma once

#include <boost/json/value.hpp>

#include <string>

#include "cli/command_support.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

void AddChangesCommands(CLI::App& root, CliState& state);

// For a 202 answer carrying a Change: prints the change (table: id, action, target,
// status, approvals needed) and the stderr note "approval required: change <id> is
// pending ..."; returns 0.
int ReportPendingChange(const CliState& state, OutputFormat format, const boost::json::value& change);

// CHANGE ACTION TARGET ENVIRONMENT REQUESTER STATUS APPROVALS EXPIRES, one row per change;
// APPROVALS is "<given>/<needed>".
std::string ChangesTable(const boost::json::array& changes);
// Every field of one change, one per line (the request body as compact JSON).
std::string ChangeDetails(const boost::json::object& change);

}  // namespace storeplane::cli
