// /v1/tokens: create (the token text is shown once), list (never text or hash) and revoke
// bearer tokens of the principals the policy names. Revocation holds from the next request.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "server/api_json.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/json_body.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

constexpr std::int64_t kMaxTokenLifetimeSeconds = 10LL * 365 * 24 * 3600;

Result<Response> CreateToken(RequestContext& ctx) {
  SP_RETURN_IF_ERROR(RequireMediaType(ctx.request, {"application/json"}));
  auto object = ParseJsonObject(ctx.request.body);
  if (!object.ok()) return object.error();
  FieldReader fields(*object);
  SP_RETURN_IF_ERROR(fields.RejectUnknown({"principal", "description", "expires_in_seconds"}));
  auto principal = fields.RequiredString("principal");
  if (!principal.ok()) return principal.error();
  auto description = fields.OptionalString("description");
  if (!description.ok()) return description.error();
  if (description->value_or("").size() > 200)
    return Error::Invalid("description is limited to 200 bytes", "description");
  std::optional<std::int64_t> expires_at;
  if (const auto* v = object->if_contains("expires_in_seconds"); v != nullptr && !v->is_null()) {
    if (!v->is_int64() || v->as_int64() < 60 || v->as_int64() > kMaxTokenLifetimeSeconds) {
      return Error::Invalid(
          "expires_in_seconds must be an integer from 60 to " + std::to_string(kMaxTokenLifetimeSeconds),
          "expires_in_seconds");
    }
    expires_at = ctx.now_ms + v->as_int64() * 1000;
  }
  const auto named = ctx.policy.principals.find(*principal);
  if (named == ctx.policy.principals.end()) {
    return Error::Invalid("principal '" + *principal + "' is not named in the policy", "principal");
  }

  const auto token = GenerateToken();
  db::TokenRecord record;
  record.id = "tok_" + RandomHex(12);
  record.token_hash = Sha256Hex(token);
  record.principal_id = *principal;
  record.description = description->value_or("");
  record.created_at_ms = ctx.now_ms;
  record.expires_at_ms = expires_at;
  record.created_by = ctx.caller->principal_id;
  db::WriteBatch batch;
  batch.effects.emplace_back(
      db::InsertTokenEffect{db::Principal{*principal, *principal, named->second.kind, {}, ctx.now_ms}, record});
  batch.audit.push_back(ctx.Audit("token/" + record.id, "ok", {{"principal", *principal}}));
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) return written.error();
  ctx.MarkAudited();
  auto body = TokenJson(record);
  body["token"] = token;
  auto resp = JsonResponse(201, body);
  resp.SetHeader("Location", "/v1/tokens/" + record.id);
  return resp;
}

Result<Response> ListTokens(RequestContext& ctx) {
  std::optional<std::string> principal;
  auto params = ParseQueryParams(ctx.request.query, {"principal"});
  if (!params.ok()) return params.error();
  if (auto it = params->find("principal"); it != params->end()) principal = it->second;
  auto tokens = ctx.services.repo.ListTokens(principal);
  if (!tokens.ok()) return tokens.error();
  json::array items;
  for (const auto& t : *tokens) items.emplace_back(TokenJson(t));
  return JsonResponse(200, json::object{{"items", std::move(items)}});
}

Result<Response> RevokeToken(RequestContext& ctx) {
  const auto& id = ctx.params.at("id");
  ctx.audit_target = "token/" + id;
  auto token = ctx.services.repo.GetToken(id);
  if (!token.ok()) return token.error();
  if (!*token) return Error::NotFound("no token '" + id + "'");
  if ((*token)->revoked_at_ms) return Error{ErrorCode::kConflict, "token '" + id + "' is already revoked", {}};
  db::WriteBatch batch;
  batch.effects.emplace_back(db::RevokeTokenEffect{id, ctx.now_ms});
  batch.audit.push_back(ctx.Audit("token/" + id, "ok", {{"principal", (*token)->principal_id}}));
  auto written = ctx.services.repo.Apply(batch);
  if (!written.ok()) return written.error();
  ctx.MarkAudited();
  auto revoked = **token;
  revoked.revoked_at_ms = ctx.now_ms;
  return JsonResponse(200, TokenJson(revoked));
}

}  // namespace

void RegisterTokenHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("POST", "/v1/tokens")] = CreateToken;
  by_route[RouteKey("GET", "/v1/tokens")] = ListTokens;
  by_route[RouteKey("DELETE", "/v1/tokens/{id}")] = RevokeToken;
}

}  // namespace storeplane::server
