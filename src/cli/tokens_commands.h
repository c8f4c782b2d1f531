// `storeplane tokens create|list|revoke`: API tokens of principals. The token text is shown
// once, by `create`; the server keeps only its hash, so it cannot be shown again.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cli/command_support.h"
#include "core/result.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

void AddTokensCommands(CLI::App& root, CliState& state);

// "90m", "12h", "30d", "2w", "45s", or a sum of them ("1d12h") → seconds.
// kInvalidArgument for anything else, zero, or more than 100 years.
Result<std::int64_t> ParseDuration(std::string_view text);

// TOKEN PRINCIPAL DESCRIPTION CREATED EXPIRES REVOKED, one row per token record.
std::string TokensTable(const boost::json::array& tokens);

}  // namespace storeplane::cli
