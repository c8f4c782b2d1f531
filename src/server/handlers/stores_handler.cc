// /v1/stores: register, get, list (filters, label selector, cursor pages) and update of
// a store's name and labels (If-Match), each decided against the policy with the store as
// target and audited in the same transaction as the change. Stores outside the caller's
// scope do not exist for it (404, absent from lists).
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <chrono>
#include <random>
#include <thread>

#include "core/labels.h"
#include "core/time_format.h"
#include "server/api_json.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/handler_support.h"
#include "server/json_body.h"
#include "server/problem.h"
#include "server/store_actions.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

// Cursors are opaque to clients: "c" + hex of the last id returned.
std::string EncodeCursor(const std::string& after_id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "c";
  for (unsigned char c : after_id) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

Result<std::string> DecodeCursor(std::string_view cursor) {
  auto bad = Error::Invalid("cursor is not one this server issued", "cursor");
  if (cursor.size() < 3 || cursor.front() != 'c' || cursor.size() % 2 == 0 || cursor.size() > 1 + 2 * 63) {
    return bad;
  }
  std::string out;
  for (std::size_t i = 1; i < cursor.size(); i += 2) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(cursor.data() + i, cursor.data() + i + 2, value, 16);
    if (ec != std::errc() || p != cursor.data() + i + 2) return bad;
    out.push_back(static_cast<char>(value));
  }
  if (!core::ValidateStoreId(out).ok()) return bad;
  return out;
}

Result<db::StoreQuery> ParseListQuery(const Request& req, const core::EnvironmentSet& envs) {
  db::StoreQuery q;
  // Form encoding: a raw '+' is a space (a literal plus arrives as %2B).
  std::string query = req.query;
  for (std::size_t i = query.find('+'); i != std::string::npos; i = query.find('+', i)) query.replace(i, 1, "%20");
  auto params = ParseQueryParams(query, {"environment", "isolation_mode", "state", "selector", "limit", "cursor"});
  if (!params.ok()) return params.error();
  for (const auto& [key, value] : *params) {
    if (key == "environment") {
      SP_RETURN_IF_ERROR(core::ValidateEnvironment(value, envs));
      q.environment = value;
    } else if (key == "isolation_mode") {
      auto mode = core::ParseIsolationMode(value);
      if (!mode) return Error::Invalid("isolation_mode must be shared, dedicated or isolated", key);
      q.isolation_mode = *mode;
    } else if (key == "state") {
      auto state = core::ParseStoreState(value);
      if (!state) return Error::Invalid("state '" + value + "' is not a lifecycle state", key);
      q.state = *state;
    } else if (key == "selector") {
      auto sel = core::LabelSelector::Parse(value);
      if (!sel.ok()) return sel.error();
      q.selector = std::move(sel.value());
    } else if (key == "limit") {
      int limit = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || p != value.data() + value.size() || limit < 1 || limit > 1000) {
        return Error::Invalid("limit must be an integer from 1 to 1000", key);
      }
      q.limit = limit;
    } else if (key == "cursor") {
      auto after = DecodeCursor(value);
      if (!after.ok()) return after.error();
      q.after_id = std::move(after.value());
    }
  }
  return q;
}

Result<Response> ListStores(RequestContext& ctx) {
  auto query = ParseListQuery(ctx.request, ctx.services.config.environments);
  if (!query.ok()) return query.error();
  // Object scope: the caller sees only the stores it may read; the rest are not there.
  const auto& policy = ctx.policy;
  const auto principal = ctx.caller->principal_id;
  query->visible = [&policy, principal](const core::Store& store) {
    return core::Decide(policy, principal, "store.read", TargetOf(store)).allowed;
  };
  ctx.authorized = true;
  ctx.decision = core::Decision{true, "object-scope", "stores outside the caller's scope are filtered out", nullptr};
  auto page = ctx.services.repo.ListStores(*query);
  if (!page.ok()) return page.error();
  json::array items;
  items.reserve(page->items.size());
  for (const auto& s : page->items) items.emplace_back(StoreJson(s));
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] =
      page->next_after_id.empty() ? json::value(nullptr) : json::value(EncodeCursor(page->next_after_id));
  return JsonResponse(200, body);
}

Result<Response> GetStore(RequestContext& ctx) {
  auto store = LoadVisibleStore(ctx, ctx.params.at("id"));
  if (!store.ok()) return store.error();
  ctx.Authorize("store.read", TargetOf(*store));
  return StoreResponse(200, *store);
}

Result<Response> RegisterStore(RequestContext& ctx) {
  const auto& req = ctx.request;
  SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/json"}));
  auto& repo = ctx.services.repo;

  auto check = CheckIdempotencyKey(ctx, 201);
  if (!check.ok()) return check.error();
  if (check->answer) {
    ctx.Authorize("store.register", std::nullopt);  // a replay acts on nothing
    ctx.decision = core::Decision{true, "idempotent-replay", "", nullptr};
    return std::move(*check->answer);
  }
  auto idem = std::move(check->record);

  auto store = DecodeRegistration(req.body, ctx.services.config.environments, ctx.now_ms);
  if (!store.ok()) return store.error();
  const auto decision = ctx.Authorize("store.register", TargetOf(*store));
  if (!decision.allowed) return Error{ErrorCode::kPermissionDenied, "not allowed to perform store.register", {}};
  ctx.audit_params = {{"environment", store->environment},
                      {"isolation_mode", std::string(core::ToString(store->isolation_mode))}};

  if (decision.approval != nullptr) {
    auto existing = repo.GetStore(store->id);
    if (existing.ok()) return Error{ErrorCode::kAlreadyExists, "store id '" + store->id + "' is already taken", {}};
    if (existing.error().code != ErrorCode::kNotFound) return existing.error();
    return RequestApproval(ctx, *store, req.body, std::move(idem));
  }

  const auto location = "/v1/stores/" + store->id;
  if (idem) {
    idem->response_body = json::serialize(StoreJson(*store));
    idem->location = location;
  }
  db::WriteBatch batch;
  batch.effects.emplace_back(db::InsertStoreEffect{*store});
  batch.audit.push_back(ctx.Audit("store/" + store->id, "ok", ctx.audit_params));
  batch.idempotency = idem;
  auto written = repo.Apply(batch);
  if (!written.ok()) {
    // A concurrent twin with the same Idempotency-Key may have won the race: replay it.
    if (auto twin = ReplayTwin(ctx, idem, written.error())) return std::move(*twin);
    return written.error();
  }
  ctx.MarkAudited();
  auto resp = StoreResponse(201, written->stores.at(0));
  resp.SetHeader("Location", location);
  return resp;
}

// Parses If-Match: "*" or a quoted version. nullopt means "*".
Result<std::optional<std::int64_t>> ParseIfMatch(const Request& req) {
  if (!req.HasHeader("if-match")) {
    return Error{ErrorCode::kPreconditionRequired, "If-Match with the store's ETag is required to update it", {}};
  }
  auto value = req.Header("if-match");
  if (value == "*") return std::optional<std::int64_t>();
  if (value.size() < 3 || value.front() != '"' || value.back() != '"') {
    return Error::Invalid("If-Match must be the quoted ETag of the store, e.g. \"3\"", "If-Match");
  }
  std::int64_t version = 0;
  auto [p, ec] = std::from_chars(value.data() + 1, value.data() + value.size() - 1, version);
  if (ec != std::errc() || p != value.data() + value.size() - 1) {
    // An ETag this server never issued can never match.
    return Error{ErrorCode::kPreconditionFailed, "If-Match does not match the store's current ETag", {}};
  }
  return std::optional<std::int64_t>(version);
}

Result<Response> UpdateStore(RequestContext& ctx) {
  const auto& req = ctx.request;
  const auto& id = ctx.params.at("id");
  SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/merge-patch+json", "application/json"}));
  auto if_match = ParseIfMatch(req);
  if (!if_match.ok()) return if_match.error();
  auto patch = DecodeStorePatch(req.body);
  if (!patch.ok()) return patch.error();

  // If-Match: * asks for no particular version: when the store moves between our read and
  // our write (a run's lifecycle step, an agent's release report), read it again and apply
  // the patch to the new version instead of answering 412 to a caller that named none (each
  // round one of the racing writers commits, so a bounded retry ends). A short random pause
  // before each new round keeps two writers from colliding in step round after round (a
  // fresh CI run once saw one PATCH lose 16 rounds in a row without it).
  thread_local std::minstd_rand jitter{std::random_device{}()};
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(jitter() % (500U * static_cast<unsigned>(attempt))));
    }
    auto current = LoadVisibleStore(ctx, id);
    if (!current.ok()) return current.error();
    const auto updated = core::ApplyPatch(*current, *patch, ctx.now_ms);
    // The change must be allowed on the store as it is and as it will be, so that labels
    // cannot move a store out of (or into) the caller's scope.
    const auto after = core::Decide(ctx.policy, ctx.caller->principal_id, "store.label", TargetOf(updated));
    const auto decision = ctx.Authorize("store.label", TargetOf(*current));
    if (!decision.allowed || !after.allowed) {
      if (decision.allowed) ctx.decision = after;
      return Error{ErrorCode::kPermissionDenied, "not allowed to perform store.label", {}};
    }
    if (*if_match && **if_match != current->version) {
      return Error{ErrorCode::kPreconditionFailed,
                   "store '" + id + "' is at version " + std::to_string(current->version) + ", not " +
                       std::to_string(**if_match),
                   {}};
    }
    if (current->state == core::StoreState::kDecommissioned) {
      return Error{ErrorCode::kConflict, "store '" + id + "' is decommissioned; its record is kept for audit only", {}};
    }
    std::string keys;
    for (const auto& [k, v] : updated.labels) keys += (keys.empty() ? "" : ",") + k;
    ctx.audit_params = {{"version", std::to_string(updated.version)}, {"label_keys", keys}};
    if (decision.approval != nullptr) {
      return RequestApproval(ctx, *current, LabelChangeBody(req.body, current->version), std::nullopt);
    }
    db::WriteBatch batch;
    batch.effects.emplace_back(db::UpdateStoreEffect{updated, current->version});
    batch.audit.push_back(ctx.Audit("store/" + id, "ok", ctx.audit_params));
    auto written = ctx.services.repo.Apply(batch);
    if (!written.ok() && !*if_match && written.error().code == ErrorCode::kPreconditionFailed && attempt < 31) {
      continue;
    }
    if (!written.ok()) return written.error();
    ctx.MarkAudited();
    return StoreResponse(200, written->stores.at(0));
  }
}

}  // namespace

void RegisterStoreHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/stores")] = ListStores;
  by_route[RouteKey("POST", "/v1/stores")] = RegisterStore;
  by_route[RouteKey("GET", "/v1/stores/{id}")] = GetStore;
  by_route[RouteKey("PATCH", "/v1/stores/{id}")] = UpdateStore;
}

}  // namespace storeplane::server
