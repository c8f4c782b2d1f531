// JSON shapes of the operator API's resources (stores, changes, tokens, audit records and
// checkpoints) and small request helpers shared by the handlers. One place per shape, so
// the OpenAPI description has one thing to match.
#pragma once

#include <boost/json/object.hpp>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

#include "core/audit.h"
#include "core/result.h"
#include "core/store.h"
#include "db/repository.h"
#include "server/http_types.h"

namespace storeplane::server {

boost::json::object StoreJson(const core::Store& store);
boost::json::object ChangeJson(const db::ChangeRequest& change);
boost::json::object TokenJson(const db::TokenRecord& token);  // never the token text or hash
boost::json::object AuditRecordJson(const core::AuditRecord& record);
boost::json::object CheckpointJson(const core::AuditCheckpoint& checkpoint);
boost::json::object RunJson(const db::PipelineRunRecord& run);

// A 200/201 response with a JSON body.
Response JsonResponse(int status, const boost::json::object& body);
// A store response with its ETag.
Response StoreResponse(int status, const core::Store& store);

// kUnsupportedMediaType unless Content-Type (without parameters) is one of `accepted`.
Status RequireMediaType(const Request& req, std::initializer_list<std::string_view> accepted);
// The query string as key -> value: kMalformedRequest when it does not parse, and
// kInvalidArgument naming the first key not in `allowed` or a key given twice.
Result<std::map<std::string, std::string>> ParseQueryParams(std::string_view query,
                                                            std::initializer_list<std::string_view> allowed);
// Parses a non-negative decimal; kInvalidArgument naming `field` otherwise.
Result<std::int64_t> ParseCount(std::string_view text, std::string_view field, std::int64_t min, std::int64_t max);

}  // namespace storeplane::server
