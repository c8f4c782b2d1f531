// `storeplane authz explain`: asks the server whether a principal may perform an action on a
// target (POST /v1/authz/explain), which rule decides, and whether approval is still needed.
// It never acts. Both answers, allowed and denied, exit 0.
#pragma once

#include <string>

#include <boost/json/value.hpp>

#include "cli/command_support.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

void AddAuthzCommands(CLI::App& root, CliState& state);

// decision / rule / reason / approval lines for an explain answer.
std::string ExplainText(const boost::json::object& answer);

}  // namespace storeplane::cli
