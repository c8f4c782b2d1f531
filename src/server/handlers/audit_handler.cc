// /v1/audit: the hash-chained audit trail (filters, cursor pages), its signed checkpoints,
// the public key that verifies them, and an NDJSON export for offline verification.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "server/api_json.h"
#include "server/app.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

Result<Response> ListAudit(RequestContext& ctx) {
  auto params = ParseQueryParams(ctx.request.query, {"after", "limit", "principal", "action", "target"});
  if (!params.ok()) return params.error();
  db::AuditQuery query;
  if (auto it = params->find("after"); it != params->end()) {
    auto after = ParseCount(it->second, "after", 0, INT64_MAX);
    if (!after.ok()) return after.error();
    query.after_seq = *after;
  }
  if (auto it = params->find("limit"); it != params->end()) {
    auto limit = ParseCount(it->second, "limit", 1, 1000);
    if (!limit.ok()) return limit.error();
    query.limit = static_cast<int>(*limit);
  }
  if (auto it = params->find("principal"); it != params->end()) query.principal = it->second;
  if (auto it = params->find("action"); it != params->end()) query.action = it->second;
  if (auto it = params->find("target"); it != params->end()) query.target = it->second;
  auto page = ctx.services.repo.ListAudit(query);
  if (!page.ok()) return page.error();
  json::array items;
  for (const auto& r : page->items) items.emplace_back(AuditRecordJson(r));
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] =
      page->next_after_seq == 0 ? json::value(nullptr) : json::value(std::to_string(page->next_after_seq));
  return JsonResponse(200, body);
}

Result<Response> ListCheckpoints(RequestContext& ctx) {
  auto params = ParseQueryParams(ctx.request.query, {"after", "limit"});
  if (!params.ok()) return params.error();
  std::int64_t after = 0;
  std::int64_t limit = 100;
  if (auto it = params->find("after"); it != params->end()) {
    auto n = ParseCount(it->second, "after", 0, INT64_MAX);
    if (!n.ok()) return n.error();
    after = *n;
  }
  if (auto it = params->find("limit"); it != params->end()) {
    auto n = ParseCount(it->second, "limit", 1, 1000);
    if (!n.ok()) return n.error();
    limit = *n;
  }
  auto checkpoints = ctx.services.repo.ListCheckpoints(after, static_cast<int>(limit));
  if (!checkpoints.ok()) return checkpoints.error();
  // A full page may have a successor; the next (possibly empty) page tells.
  const bool more = checkpoints->size() == static_cast<std::size_t>(limit);
  json::array items;
  for (const auto& c : *checkpoints) items.emplace_back(CheckpointJson(c));
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] = more ? json::value(std::to_string(checkpoints->back().seq)) : json::value(nullptr);
  return JsonResponse(200, body);
}

Result<Response> PublicKey(RequestContext& ctx) {
  const auto& pem = ctx.services.audit_public_key_pem;
  auto key_id = core::KeyId(pem);
  if (!key_id.ok()) return Error::Internal("no audit signing key is configured");
  return JsonResponse(200, json::object{{"key_id", *key_id}, {"public_key_pem", pem}});
}

// Every record in sequence order, then every checkpoint, one JSON object per line.
Result<Response> Export(RequestContext& ctx) {
  std::string out;
  db::AuditQuery query;
  query.limit = 1000;
  for (;;) {
    auto page = ctx.services.repo.ListAudit(query);
    if (!page.ok()) return page.error();
    for (const auto& r : page->items) {
      auto line = AuditRecordJson(r);
      line["kind"] = "record";
      out += json::serialize(line);
      out += '\n';
    }
    if (page->next_after_seq == 0) break;
    query.after_seq = page->next_after_seq;
  }
  std::int64_t after = 0;
  for (;;) {
    auto checkpoints = ctx.services.repo.ListCheckpoints(after, 1000);
    if (!checkpoints.ok()) return checkpoints.error();
    for (const auto& c : *checkpoints) {
      auto line = CheckpointJson(c);
      line["kind"] = "checkpoint";
      out += json::serialize(line);
      out += '\n';
    }
    if (checkpoints->size() < 1000) break;
    after = checkpoints->back().seq;
  }
  Response resp;
  resp.content_type = "application/x-ndjson";
  resp.body = std::move(out);
  return resp;
}

}  // namespace

void RegisterAuditHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/audit")] = ListAudit;
  by_route[RouteKey("GET", "/v1/audit/checkpoints")] = ListCheckpoints;
  by_route[RouteKey("GET", "/v1/audit/public-key")] = PublicKey;
  by_route[RouteKey("GET", "/v1/audit/export")] = Export;
}

}  // namespace storeplane::server
