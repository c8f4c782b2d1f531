// /v1/stores: register, get, list (filters, label selector, cursor pages) and update of
// a store's name and labels (If-Match). A thin adapter: validation lives in core/store,
// persistence behind db::Repository.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse_query.hpp>
#include <charconv>

#include "core/labels.h"
#include "core/time_format.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/json_body.h"
#include "server/problem.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

json::value OptionalText(const std::optional<std::string>& v) { return v ? json::value(*v) : json::value(nullptr); }

json::object StoreJson(const core::Store& s) {
  json::object labels;
  for (const auto& [k, v] : s.labels) labels[k] = v;
  return json::object{{"id", s.id},
                      {"name", s.name},
                      {"environment", s.environment},
                      {"isolation_mode", core::ToString(s.isolation_mode)},
                      {"labels", std::move(labels)},
                      {"state", core::ToString(s.state)},
                      {"desired_release", OptionalText(s.desired_release)},
                      {"current_release", OptionalText(s.current_release)},
                      {"last_known_good_release", OptionalText(s.last_known_good_release)},
                      {"version", s.version},
                      {"created_at", core::FormatRfc3339Millis(s.created_at_ms)},
                      {"updated_at", core::FormatRfc3339Millis(s.updated_at_ms)}};
}

std::string ETag(const core::Store& s) { return "\"" + std::to_string(s.version) + "\""; }

Response StoreResponse(int status, const core::Store& s) {
  Response resp;
  resp.status = status;
  resp.body = json::serialize(StoreJson(s));
  resp.SetHeader("ETag", ETag(s));
  return resp;
}

// The media type without parameters, lower-cased.
std::string MediaType(const Request& req) {
  auto ct = req.Header("content-type");
  const auto semi = ct.find(';');
  if (semi != std::string::npos) ct.resize(semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  for (auto& c : ct) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ct;
}

Status RequireMediaType(const Request& req, std::initializer_list<std::string_view> accepted) {
  const auto type = MediaType(req);
  for (auto a : accepted) {
    if (type == a) return Status::Ok();
  }
  std::string list;
  for (auto a : accepted) list += (list.empty() ? "" : " or ") + std::string(a);
  return Error{ErrorCode::kUnsupportedMediaType, "Content-Type must be " + list, {}};
}

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
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return Error{ErrorCode::kMalformedRequest, "the query string does not parse", {}};
  std::set<std::string> seen;
  for (const auto& param : *parsed) {
    const std::string key = param.key.decode();
    const std::string value = param.value.decode();
    if (!seen.insert(key).second) return Error::Invalid("query parameter '" + key + "' is repeated", key);
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
    } else {
      return Error::Invalid("unknown query parameter '" + key + "'", key);
    }
  }
  return q;
}

Result<Response> ListStores(RequestContext& ctx) {
  auto query = ParseListQuery(ctx.request, ctx.services.config.environments);
  if (!query.ok()) return query.error();
  auto page = ctx.services.repo.ListStores(*query);
  if (!page.ok()) return page.error();
  json::array items;
  items.reserve(page->items.size());
  for (const auto& s : page->items) items.emplace_back(StoreJson(s));
  json::object body{{"items", std::move(items)}};
  body["next_cursor"] =
      page->next_after_id.empty() ? json::value(nullptr) : json::value(EncodeCursor(page->next_after_id));
  Response resp;
  resp.body = json::serialize(body);
  return resp;
}

Result<Response> GetStore(RequestContext& ctx) {
  const auto& id = ctx.params.at("id");
  if (!core::ValidateStoreId(id).ok()) return Error::NotFound("no store '" + id + "'");
  auto store = ctx.services.repo.GetStore(id);
  if (!store.ok()) return store.error();
  return StoreResponse(200, *store);
}

Status ValidateIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > 255)
    return Error::Invalid("Idempotency-Key must be 1..255 characters", "Idempotency-Key");
  for (char c : key) {
    if (c < '!' || c > '~') return Error::Invalid("Idempotency-Key must be printable ASCII", "Idempotency-Key");
  }
  return Status::Ok();
}

Response Replay(const db::IdempotencyRecord& rec) {
  Response resp;
  resp.status = rec.status;
  resp.body = rec.response_body;
  if (!rec.location.empty()) resp.SetHeader("Location", rec.location);
  boost::system::error_code ec;
  auto body = json::parse(rec.response_body, ec);
  if (!ec && body.is_object() && body.as_object().contains("version")) {
    resp.SetHeader("ETag", "\"" + json::serialize(body.as_object().at("version")) + "\"");
  }
  resp.SetHeader("Idempotent-Replayed", "true");
  return resp;
}

Result<Response> RegisterStore(RequestContext& ctx) {
  const auto& req = ctx.request;
  SP_RETURN_IF_ERROR(RequireMediaType(req, {"application/json"}));
  auto& repo = ctx.services.repo;

  std::optional<db::IdempotencyRecord> idem;
  if (req.HasHeader("idempotency-key")) {
    const auto key = req.Header("idempotency-key");
    SP_RETURN_IF_ERROR(ValidateIdempotencyKey(key));
    idem = db::IdempotencyRecord{ctx.principal->id, key, Sha256Hex("POST /v1/stores\n" + req.body), 201, {}, {},
                                 ctx.now_ms};
    auto prior = repo.FindIdempotency(ctx.principal->id, key);
    if (!prior.ok()) return prior.error();
    if (*prior) {
      if ((*prior)->request_hash != idem->request_hash) {
        return ProblemResponse(Error::Invalid("Idempotency-Key '" + key + "' was used for a different request"),
                               req.path, ctx.request_id, ProblemKind::kIdempotencyKeyReused);
      }
      return Replay(**prior);
    }
  }

  auto object = ParseJsonObject(req.body);
  if (!object.ok()) return object.error();
  FieldReader fields(*object);
  SP_RETURN_IF_ERROR(fields.RejectUnknown({"id", "name", "environment", "isolation_mode", "labels"}));
  auto id = fields.RequiredString("id");
  if (!id.ok()) return id.error();
  auto name = fields.OptionalString("name");
  if (!name.ok()) return name.error();
  auto env = fields.RequiredString("environment");
  if (!env.ok()) return env.error();
  auto mode = fields.RequiredString("isolation_mode");
  if (!mode.ok()) return mode.error();
  auto labels = fields.OptionalStringMap("labels");
  if (!labels.ok()) return labels.error();

  core::StoreRegistration reg{*id, name->value_or(""), *env, *mode, labels->value_or(core::Labels{})};
  auto store = core::NewStore(reg, ctx.services.config.environments, ctx.now_ms);
  if (!store.ok()) return store.error();

  const auto location = "/v1/stores/" + store->id;
  if (idem) {
    idem->response_body = json::serialize(StoreJson(*store));
    idem->location = location;
  }
  auto inserted = repo.InsertStore(*store, idem);
  if (!inserted.ok()) {
    // A concurrent twin with the same Idempotency-Key may have won the race: replay it.
    if (idem && inserted.error().code == ErrorCode::kAlreadyExists) {
      auto prior = repo.FindIdempotency(ctx.principal->id, idem->key);
      if (prior.ok() && *prior && (*prior)->request_hash == idem->request_hash) return Replay(**prior);
    }
    return inserted.error();
  }
  auto resp = StoreResponse(201, *inserted);
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
  auto object = ParseJsonObject(req.body);
  if (!object.ok()) return object.error();
  FieldReader fields(*object);
  SP_RETURN_IF_ERROR(fields.RejectUnknown({"name", "labels"}));
  core::StorePatch patch;
  auto name = fields.OptionalString("name");
  if (!name.ok()) return name.error();
  if (object->contains("name") && !*name) return Error::Invalid("name cannot be removed", "name");
  patch.name = std::move(*name);
  auto labels = fields.OptionalStringMap("labels");
  if (!labels.ok()) return labels.error();
  // A JSON null for labels removes them all.
  if (object->contains("labels")) patch.labels = labels->value_or(core::Labels{});
  SP_RETURN_IF_ERROR(core::ValidatePatch(patch));

  if (!core::ValidateStoreId(id).ok()) return Error::NotFound("no store '" + id + "'");
  auto current = ctx.services.repo.GetStore(id);
  if (!current.ok()) return current.error();
  if (*if_match && **if_match != current->version) {
    return Error{
        ErrorCode::kPreconditionFailed,
        "store '" + id + "' is at version " + std::to_string(current->version) + ", not " + std::to_string(**if_match),
        {}};
  }
  if (current->state == core::StoreState::kDecommissioned) {
    return Error{ErrorCode::kConflict, "store '" + id + "' is decommissioned; its record is kept for audit only", {}};
  }
  const auto updated = core::ApplyPatch(*current, patch, ctx.now_ms);
  auto stored = ctx.services.repo.UpdateStore(updated, current->version);
  if (!stored.ok()) return stored.error();
  return StoreResponse(200, *stored);
}

}  // namespace

void RegisterStoreHandlers(std::map<std::string, Handler>& by_route) {
  by_route[RouteKey("GET", "/v1/stores")] = ListStores;
  by_route[RouteKey("POST", "/v1/stores")] = RegisterStore;
  by_route[RouteKey("GET", "/v1/stores/{id}")] = GetStore;
  by_route[RouteKey("PATCH", "/v1/stores/{id}")] = UpdateStore;
}

}  // namespace storeplane::server
