#include "server/problem.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace storeplane::server {
namespace {

struct ProblemType {
  int status;
  std::string_view slug;
  std::string_view title;
};

ProblemType TypeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return {422, "validation-failed", "Validation failed"};
    case ErrorCode::kMalformedRequest: return {400, "malformed-request", "Malformed request"};
    case ErrorCode::kNotFound: return {404, "not-found", "Not found"};
    case ErrorCode::kAlreadyExists: return {409, "already-exists", "Already exists"};
    case ErrorCode::kConflict: return {409, "conflict", "Conflict"};
    case ErrorCode::kPreconditionFailed: return {412, "precondition-failed", "Precondition failed"};
    case ErrorCode::kPreconditionRequired: return {428, "precondition-required", "Precondition required"};
    case ErrorCode::kUnauthenticated: return {401, "unauthenticated", "Unauthenticated"};
    case ErrorCode::kPermissionDenied: return {403, "forbidden", "Forbidden"};
    case ErrorCode::kPayloadTooLarge: return {413, "payload-too-large", "Payload too large"};
    case ErrorCode::kUnsupportedMediaType: return {415, "unsupported-media-type", "Unsupported media type"};
    case ErrorCode::kResourceExhausted: return {429, "too-many-requests", "Too many requests"};
    case ErrorCode::kUnavailable: return {503, "unavailable", "Service unavailable"};
    case ErrorCode::kInternal: return {500, "internal", "Internal error"};
  }
  return {500, "internal", "Internal error"};
}

ProblemType TypeFor(ProblemKind kind, ErrorCode code) {
  switch (kind) {
    case ProblemKind::kFromErrorCode: return TypeFor(code);
    case ProblemKind::kMethodNotAllowed: return {405, "method-not-allowed", "Method not allowed"};
    case ProblemKind::kHeadersTooLarge:
      return {431, "request-header-fields-too-large", "Request header fields too large"};
    case ProblemKind::kIdempotencyKeyReused:
      return {422, "idempotency-key-reused", "Idempotency key reused with a different request"};
    case ProblemKind::kNotAcceptable: return {406, "not-acceptable", "Not acceptable"};
  }
  return TypeFor(code);
}

}  // namespace

int HttpStatusFor(ErrorCode code) { return TypeFor(code).status; }

namespace {

boost::json::object ProblemBody(const Error& error, std::string_view instance, std::string_view request_id,
                                ProblemKind kind) {
  const auto type = TypeFor(kind, error.code);
  boost::json::object body;
  body["type"] = std::string("urn:storeplane:problem:") + std::string(type.slug);
  body["title"] = type.title;
  body["status"] = type.status;
  body["detail"] = error.message.empty() ? std::string(type.title) : error.message;
  body["instance"] = instance;
  if (!request_id.empty()) body["request_id"] = request_id;
  if (!error.field.empty()) body["field"] = error.field;
  return body;
}

Response FromBody(const boost::json::object& body, const Error& error, ProblemKind kind) {
  const auto type = TypeFor(kind, error.code);
  Response resp;
  resp.status = type.status;
  resp.content_type = "application/problem+json";
  resp.body = boost::json::serialize(body);
  if (type.status == 429 || type.status == 503) resp.SetHeader("Retry-After", "1");
  return resp;
}

}  // namespace

Response ProblemResponse(const Error& error, std::string_view instance, std::string_view request_id, ProblemKind kind) {
  return FromBody(ProblemBody(error, instance, request_id, kind), error, kind);
}

Response ProblemResponse(const Error& error, std::string_view instance, std::string_view request_id,
                         const std::vector<std::pair<std::string, std::string>>& extra_members) {
  auto body = ProblemBody(error, instance, request_id, ProblemKind::kFromErrorCode);
  for (const auto& [name, value] : extra_members) {
    if (!body.contains(name)) body[name] = value;
  }
  return FromBody(body, error, ProblemKind::kFromErrorCode);
}

}  // namespace storeplane::server
