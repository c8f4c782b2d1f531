// RFC 9457 problem details: the one place where an Error becomes an HTTP status and an
// application/problem+json body. The body carries a stable type URN and a safe message;
// details for operators go to the log, never to the client.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "server/http_types.h"

namespace storeplane::server {

// The problem kinds beyond those implied by an ErrorCode.
enum class ProblemKind {
  kFromErrorCode,
  kMethodNotAllowed,
  kHeadersTooLarge,
  kIdempotencyKeyReused,
  kNotAcceptable,
};

int HttpStatusFor(ErrorCode code);

// Builds the response for `error`. `instance` is the request path, request_id echoes.
Response ProblemResponse(const Error& error, std::string_view instance, std::string_view request_id,
                         ProblemKind kind = ProblemKind::kFromErrorCode);

// The same, with extra string members (RFC 9457 extension members, e.g. next_open_at).
// Names that the problem itself uses are not overwritten.
Response ProblemResponse(const Error& error, std::string_view instance, std::string_view request_id,
                         const std::vector<std::pair<std::string, std::string>>& extra_members);

}  // namespace storeplane::server
