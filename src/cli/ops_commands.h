// `storeplane ops run|list|get`: operations of the closed catalog (docs/OPERATIONS.md),
// requested of a store's agent (POST /v1/stores/{id}/operations) and followed until they
// are final. The operation name and its params are checked locally against the catalog
// (core/operation.h) before anything is sent. The pure helpers (params, paths, polling
// delays, rendering) are declared here so they can be tested without a server.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command_support.h"
#include "core/operation.h"
#include "core/result.h"

namespace CLI {
class App;
}

namespace storeplane::cli {

// Exit code of `ops run --wait` when the operation ended `failed` or `expired`; --timeout
// passing first is kExitWaitTimedOut (cli/command_support.h).
inline constexpr int kExitOperationFailed = kExitWaitFailed;

void AddOpsCommands(CLI::App& root, CliState& state);

// The operation name, or kInvalidArgument naming the catalog.
Result<core::OperationName> ParseOperationArg(std::string_view text);

// `--param key=value` arguments. Only cache.flush takes one: `types=config,full_page`
// (repeatable; each type of core::AllCacheTypes() at most once). kInvalidArgument for a
// bad key=value, an unknown key, an unknown or repeated cache type, or any param of an
// operation that takes none.
Result<core::OperationParams> ParseOperationParams(core::OperationName name, const std::vector<std::string>& args);

// Seconds as a plain integer ("300") or a duration ("5m", "1h"; see ParseDuration).
Result<std::int64_t> ParseSeconds(std::string_view text);

// {"name": ..., "params": {} | {"types": [...]}, "expires_in_s": N}
boost::json::object OperationRequestBody(core::OperationName name, const core::OperationParams& params,
                                         std::int64_t expires_in_s);

// "/v1/stores/{store}/operations", with ?limit=&cursor= when set; and one operation's path.
std::string OperationsPath(const std::string& store, int limit, const std::string& cursor);
std::string OperationPath(const std::string& store, const std::string& operation_id);

// succeeded, failed and expired are final.
bool IsFinalStateText(std::string_view state);

// "operation op_... (cache.flush on store s1): queued"
std::string OperationLine(const boost::json::object& operation);
// OPERATION NAME STATE CODE REQUESTED-BY CREATED FINISHED, one row per operation.
std::string OperationsTable(const boost::json::array& operations);
// A closed result, readable: "maintenance: on", "flushed: config, full_page",
// "schema up to date: yes", "release: r42", "magento version: 2.4.6", and tables for
// checks (NAME STATUS CODE) and indexers (INDEXER STATUS). Empty for null.
std::string ResultText(const boost::json::value& result);
// Every field of one operation, one per line, then its result (ResultText) when it has one.
std::string OperationDetails(const boost::json::object& operation);

}  // namespace storeplane::cli
