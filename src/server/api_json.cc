#include "server/api_json.h"

#include <boost/url/parse_query.hpp>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "core/time_format.h"

namespace storeplane::server {
namespace json = boost::json;
namespace {

json::value OptionalText(const std::optional<std::string>& v) { return v ? json::value(*v) : json::value(nullptr); }

json::value OptionalTime(const std::optional<std::int64_t>& ms) {
  return ms ? json::value(core::FormatRfc3339Millis(*ms)) : json::value(nullptr);
}

json::object StringMap(const std::map<std::string, std::string>& map) {
  json::object out;
  for (const auto& [k, v] : map) out[k] = v;
  return out;
}

}  // namespace

json::object StoreJson(const core::Store& s) {
  return json::object{{"id", s.id},
                      {"name", s.name},
                      {"environment", s.environment},
                      {"isolation_mode", core::ToString(s.isolation_mode)},
                      {"labels", StringMap(s.labels)},
                      {"state", core::ToString(s.state)},
                      {"desired_release", OptionalText(s.desired_release)},
                      {"current_release", OptionalText(s.current_release)},
                      {"last_known_good_release", OptionalText(s.last_known_good_release)},
                      {"version", s.version},
                      {"created_at", core::FormatRfc3339Millis(s.created_at_ms)},
                      {"updated_at", core::FormatRfc3339Millis(s.updated_at_ms)}};
}

json::object ChangeJson(const db::ChangeRequest& c) {
  json::array approvers;
  for (const auto& a : c.approvers) approvers.emplace_back(a);
  boost::system::error_code ec;
  auto request = json::parse(c.request_body, ec);
  return json::object{{"id", c.id},
                      {"action", c.action},
                      {"target", c.target},
                      {"environment", c.environment},
                      {"requester", c.requester},
                      {"approval_rule", c.approval_rule},
                      {"approvals_needed", c.approvals_needed},
                      {"approvers", std::move(approvers)},
                      {"status", c.status},
                      {"outcome", c.outcome},
                      {"created_at", core::FormatRfc3339Millis(c.created_at_ms)},
                      {"expires_at", core::FormatRfc3339Millis(c.expires_at_ms)},
                      {"version", c.version},
                      {"request", ec ? json::value(nullptr) : std::move(request)}};
}

json::object TokenJson(const db::TokenRecord& t) {
  return json::object{{"id", t.id},
                      {"principal", t.principal_id},
                      {"description", t.description},
                      {"created_by", t.created_by},
                      {"created_at", core::FormatRfc3339Millis(t.created_at_ms)},
                      {"expires_at", OptionalTime(t.expires_at_ms)},
                      {"revoked_at", OptionalTime(t.revoked_at_ms)}};
}

json::object AuditRecordJson(const core::AuditRecord& r) {
  const auto& e = r.entry;
  return json::object{{"seq", r.seq},
                      {"time", core::FormatRfc3339Millis(e.time_ms)},
                      {"time_ms", e.time_ms},
                      {"principal", e.principal},
                      {"source", e.source},
                      {"action", e.action},
                      {"target", e.target},
                      {"request_id", e.request_id},
                      {"decision", e.decision},
                      {"rule", e.rule},
                      {"outcome", e.outcome},
                      {"params", StringMap(e.params)},
                      {"prev_hash", r.prev_hash},
                      {"hash", r.hash}};
}

json::object CheckpointJson(const core::AuditCheckpoint& c) {
  return json::object{
      {"seq", c.seq}, {"hash", c.hash}, {"time_ms", c.time_ms}, {"key_id", c.key_id}, {"signature", c.signature}};
}

Response JsonResponse(int status, const json::object& body) {
  Response resp;
  resp.status = status;
  resp.body = json::serialize(body);
  return resp;
}

Response StoreResponse(int status, const core::Store& s) {
  auto resp = JsonResponse(status, StoreJson(s));
  resp.SetHeader("ETag", "\"" + std::to_string(s.version) + "\"");
  return resp;
}

Status RequireMediaType(const Request& req, std::initializer_list<std::string_view> accepted) {
  auto type = req.Header("content-type");
  const auto semi = type.find(';');
  if (semi != std::string::npos) type.resize(semi);
  while (!type.empty() && type.back() == ' ') type.pop_back();
  for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto a : accepted) {
    if (type == a) return Status::Ok();
  }
  std::string list;
  for (auto a : accepted) list += (list.empty() ? "" : " or ") + std::string(a);
  return Error{ErrorCode::kUnsupportedMediaType, "Content-Type must be " + list, {}};
}

Result<std::map<std::string, std::string>> ParseQueryParams(std::string_view query,
                                                            std::initializer_list<std::string_view> allowed) {
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return Error{ErrorCode::kMalformedRequest, "the query string does not parse", {}};
  std::map<std::string, std::string> out;
  for (const auto& param : *parsed) {
    const std::string key = param.key.decode();
    bool known = false;
    for (auto a : allowed) known = known || key == a;
    if (!known) return Error::Invalid("unknown query parameter '" + key + "'", key);
    if (!out.emplace(key, param.value.decode()).second) {
      return Error::Invalid("query parameter '" + key + "' is repeated", key);
    }
  }
  return out;
}

Result<std::int64_t> ParseCount(std::string_view text, std::string_view field, std::int64_t min, std::int64_t max) {
  std::int64_t value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size() || value < min || value > max) {
    return Error::Invalid(
        std::string(field) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max),
        std::string(field));
  }
  return value;
}

namespace {
boost::json::value RunTimeOrNull(const std::optional<std::int64_t>& ms) {
  return ms ? boost::json::value(core::FormatRfc3339Millis(*ms)) : boost::json::value(nullptr);
}
boost::json::value RunTextOrNull(const std::string& text) {
  return text.empty() ? boost::json::value(nullptr) : boost::json::value(text);
}
}  // namespace

boost::json::object RunJson(const db::PipelineRunRecord& run) {
  boost::json::object o;
  o["id"] = run.id;
  o["store_id"] = run.store_id;
  o["kind"] = run.kind;
  o["state"] = run.state;
  o["active"] = run.active;
  o["release"] = RunTextOrNull(run.release);
  o["previous_release"] = RunTextOrNull(run.previous_release);
  o["target_isolation"] = RunTextOrNull(run.target_isolation);
  o["provider"] = run.provider;
  o["external_id"] = RunTextOrNull(run.external_id);
  o["external_url"] = RunTextOrNull(run.external_url);
  o["requested_by"] = run.requested_by;
  o["reason"] = RunTextOrNull(run.reason);
  o["detail"] = RunTextOrNull(run.outcome_detail);
  o["created_at"] = core::FormatRfc3339Millis(run.created_at_ms);
  o["updated_at"] = core::FormatRfc3339Millis(run.updated_at_ms);
  o["triggered_at"] = RunTimeOrNull(run.triggered_at_ms);
  o["finished_at"] = RunTimeOrNull(run.finished_at_ms);
  o["deadline"] = core::FormatRfc3339Millis(run.deadline_ms);
  o["gate_opened_at"] = RunTimeOrNull(run.gate_opened_at_ms);
  o["schema_changed"] = run.schema_changed;
  o["rollout_id"] = RunTextOrNull(run.rollout_id);
  return o;
}

}  // namespace storeplane::server
