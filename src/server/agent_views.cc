#include "server/agent_views.h"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <map>
#include <tuple>

#include "core/time_format.h"
#include "protocol/agent_wire.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

json::value TimeOrNull(const std::optional<std::int64_t>& ms) {
  return ms ? json::value(core::FormatRfc3339Millis(*ms)) : json::value(nullptr);
}

json::value StringOrNull(const std::optional<std::string>& text) {
  return text ? json::value(*text) : json::value(nullptr);
}

// Stored JSON (written by this server from validated values); an empty text is null.
json::value StoredJson(const std::string& text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  auto value = json::parse(text, ec);
  return ec ? json::value(nullptr) : value;
}

json::array Strings(const std::vector<std::string>& items) {
  json::array out;
  for (const auto& s : items) out.emplace_back(s);
  return out;
}

}  // namespace

json::object AgentJson(const AgentView& view) {
  const auto& r = view.record;
  json::object o;
  o["store_id"] = r.store_id;
  o["agent_id"] = r.id;
  o["availability"] = core::ToString(view.availability);
  o["health"] = core::ToString(view.health.health);
  o["health_reasons"] = Strings(view.health.reasons);
  o["last_seen_at"] = TimeOrNull(r.last_seen_ms);
  o["agent_version"] = r.agent_version.empty() ? json::value(nullptr) : json::value(r.agent_version);
  o["release"] = StringOrNull(r.release);
  o["reported_isolation"] = StringOrNull(r.reported_isolation);
  o["allowed_operations"] = Strings(r.allowed_operations);
  o["enrolled_at"] = core::FormatRfc3339Millis(r.enrolled_at_ms);
  o["rotated_at"] = TimeOrNull(r.rotated_at_ms);
  o["revoked_at"] = TimeOrNull(r.revoked_at_ms);
  return o;
}

json::object OperationJson(const db::OperationRecord& op) {
  json::object o;
  o["id"] = op.id;
  o["store_id"] = op.store_id;
  o["name"] = op.name;
  o["params"] = StoredJson(op.params_json);
  o["state"] = op.state;
  o["code"] = op.code.empty() ? json::value(nullptr) : json::value(op.code);
  o["result"] = StoredJson(op.result_json);
  o["requested_by"] = op.requested_by;
  o["created_at"] = core::FormatRfc3339Millis(op.created_at_ms);
  o["delivered_at"] = TimeOrNull(op.delivered_at_ms);
  o["finished_at"] = TimeOrNull(op.finished_at_ms);
  o["expires_at"] = core::FormatRfc3339Millis(op.expires_at_ms);
  o["timeout_s"] = op.timeout_s;
  o["delivery_count"] = op.delivery_count;
  return o;
}

json::object StoreHealthJson(const core::Store& store, const std::optional<AgentView>& view,
                             const std::vector<db::LastSuccess>& stored_successes) {
  json::object o;
  o["store_id"] = store.id;
  o["recorded_isolation"] = core::ToString(store.isolation_mode);
  if (view && !view->record.revoked_at_ms) {
    o["health"] = core::ToString(view->health.health);
    o["reasons"] = Strings(view->health.reasons);
    o["availability"] = core::ToString(view->availability);
    o["last_seen_at"] = TimeOrNull(view->record.last_seen_ms);
    o["reported_isolation"] = StringOrNull(view->record.reported_isolation);
    o["release"] = StringOrNull(view->record.release);
    o["checks"] = protocol::ChecksToJson(view->checks);
  } else {
    // No agent (or a revoked one): nothing is known about the store's runtime.
    core::HealthInput input;
    input.availability = core::Availability::kNeverSeen;
    input.state = store.state;
    input.recorded_isolation = store.isolation_mode;
    const auto assessed = core::AssessHealth(input);
    o["health"] = core::ToString(assessed.health);
    json::array reasons = Strings(assessed.reasons);
    if (view) reasons.emplace_back("agent_revoked");
    o["reasons"] = std::move(reasons);
    o["availability"] = core::ToString(core::Availability::kNeverSeen);
    o["last_seen_at"] = nullptr;
    o["reported_isolation"] = nullptr;
    o["release"] = nullptr;
    o["checks"] = json::array();
  }
  // Stored successes, overridden by newer live check passes not flushed yet.
  std::map<std::tuple<std::string, std::string>, db::LastSuccess> merged;
  for (const auto& s : stored_successes) merged[{s.kind, s.name}] = s;
  if (view) {
    for (const auto& [name, at] : view->check_successes) {
      auto& slot = merged[{"check", name}];
      if (slot.at_ms < at) slot = db::LastSuccess{store.id, "check", name, at, ""};
    }
  }
  json::array successes;
  for (const auto& [key, s] : merged) {
    json::object item;
    item["kind"] = s.kind;
    item["name"] = s.name;
    item["at"] = core::FormatRfc3339Millis(s.at_ms);
    item["ref"] = s.ref.empty() ? json::value(nullptr) : json::value(s.ref);
    successes.emplace_back(std::move(item));
  }
  o["last_successes"] = std::move(successes);
  return o;
}

}  // namespace storeplane::server
