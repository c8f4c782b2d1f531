#include "protocol/agent_wire.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <set>
#include <string>
#include <utility>

namespace storeplane::protocol {
namespace {

namespace json = boost::json;
using core::CacheType;
using core::CheckResult;
using core::OperationName;

constexpr std::size_t kMaxChecks = 16;
constexpr std::size_t kMaxAllowedOperations = 16;
constexpr std::size_t kMaxOperations = 100;
constexpr std::size_t kMaxIndexers = 256;
constexpr std::size_t kMaxEnrollmentTokenLength = 128;
constexpr std::size_t kMaxCredentialLength = 128;
constexpr std::size_t kMaxAgentVersionLength = 32;
constexpr std::size_t kMinSessionLength = 16;
constexpr std::size_t kMaxSessionLength = 64;
constexpr std::size_t kMaxIdHexLength = 64;
constexpr std::int64_t kMaxHeartbeatIntervalS = 3600;
constexpr std::int64_t kMaxTimeoutS = 86400;

// ---- Patterns --------------------------------------------------------------------------

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsHex(char c) { return IsLowerHex(c) || (c >= 'A' && c <= 'F'); }

bool AllOf(std::string_view text, bool (*pred)(char)) {
  for (char c : text) {
    if (!pred(c)) return false;
  }
  return true;
}

bool IsAgentVersionChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '+' || c == '-';
}

// Printable ASCII without spaces: what a bearer secret is made of.
bool IsTokenChar(char c) { return c > 0x20 && c < 0x7f; }

// "<prefix>" followed by 1..64 hex digits.
bool IsPrefixedHexId(std::string_view text, std::string_view prefix) {
  if (text.size() <= prefix.size() || text.substr(0, prefix.size()) != prefix) return false;
  const std::string_view hex = text.substr(prefix.size());
  return hex.size() <= kMaxIdHexLength && AllOf(hex, IsHex);
}

// A bearer secret: "<prefix>" followed by at least one printable character, at most `max` in all.
bool IsPrefixedSecret(std::string_view text, std::string_view prefix, std::size_t max) {
  if (text.size() <= prefix.size() || text.size() > max || text.substr(0, prefix.size()) != prefix) return false;
  return AllOf(text, IsTokenChar);
}

// ---- Field names -----------------------------------------------------------------------

std::string Join(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  return std::string(prefix) + "." + std::string(key);
}

std::string At(std::string_view field, std::size_t i) { return std::string(field) + "[" + std::to_string(i) + "]"; }

// Re-roots an error from a core validator (whose field is relative, e.g. "release") under
// `field`, the name the value has on the wire.
Error Rename(const Error& error, const std::string& field, std::string_view core_field) {
  std::string message = error.message;
  if (message.compare(0, core_field.size(), core_field) == 0) message = field + message.substr(core_field.size());
  return Error::Invalid(std::move(message), field);
}

// ---- Strict readers --------------------------------------------------------------------

Result<json::object> ParseBody(std::string_view body) {
  json::parse_options options;
  options.max_depth = 16;
  options.allow_invalid_utf8 = false;
  options.allow_comments = false;
  options.allow_trailing_commas = false;
  boost::system::error_code ec;
  json::value value = json::parse(body, ec, {}, options);
  if (ec) return Error{ErrorCode::kMalformedRequest, "the body is not valid JSON: " + ec.message(), {}};
  if (!value.is_object()) return Error::Invalid("the body must be a JSON object");
  return std::move(value.as_object());
}

// `owner`, when given, names whose schema the keys belong to, for a clearer message.
Status RejectUnknown(const json::object& object, std::string_view prefix,
                     std::initializer_list<std::string_view> allowed, std::string_view owner = {}) {
  for (const auto& kv : object) {
    bool known = false;
    for (std::string_view name : allowed) known = known || kv.key() == name;
    if (!known) {
      const std::string field = Join(prefix, kv.key());
      if (!owner.empty()) return Error::Invalid(field + " is not part of the result of " + std::string(owner), field);
      return Error::Invalid("unknown field '" + field + "'", field);
    }
  }
  return Status::Ok();
}

// Typed access to one object's fields, with errors naming each field under `prefix`.
class Reader {
 public:
  Reader(const json::object& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

  std::string Field(std::string_view key) const { return Join(prefix_, key); }

  // Null or absent.
  bool Missing(std::string_view key) const {
    const json::value* v = object_.if_contains(key);
    return v == nullptr || v->is_null();
  }

  const json::value* Get(std::string_view key) const {
    const json::value* v = object_.if_contains(key);
    return (v == nullptr || v->is_null()) ? nullptr : v;
  }

  Error Required(std::string_view key) const { return Error::Invalid(Field(key) + " is required", Field(key)); }

  Result<std::string> String(std::string_view key) const {
    const json::value* v = Get(key);
    if (v == nullptr) return Required(key);
    if (!v->is_string()) return Error::Invalid(Field(key) + " must be a string", Field(key));
    return std::string(v->as_string());
  }

  Result<std::optional<std::string>> OptionalString(std::string_view key) const {
    if (Missing(key)) return std::optional<std::string>();
    Result<std::string> s = String(key);
    if (!s) return s.error();
    return std::optional<std::string>(std::move(*s));
  }

  Result<bool> Bool(std::string_view key) const {
    const json::value* v = Get(key);
    if (v == nullptr) return Required(key);
    if (!v->is_bool()) return Error::Invalid(Field(key) + " must be true or false", Field(key));
    return v->as_bool();
  }

  // A JSON integer (not a fraction, not an exponent form) within [min, max].
  Result<std::int64_t> Integer(std::string_view key, std::int64_t min, std::int64_t max) const {
    const json::value* v = Get(key);
    if (v == nullptr) return Required(key);
    const std::string range = " between " + std::to_string(min) + " and " + std::to_string(max);
    if (v->is_uint64()) return Error::Invalid(Field(key) + " must be an integer" + range, Field(key));
    if (!v->is_int64()) return Error::Invalid(Field(key) + " must be an integer", Field(key));
    const std::int64_t n = v->as_int64();
    if (n < min || n > max) return Error::Invalid(Field(key) + " must be an integer" + range, Field(key));
    return n;
  }

  // An array of at most `max` elements; absent or null is `allow_missing` ? empty : an error.
  Result<const json::array*> Array(std::string_view key, std::size_t max, bool allow_missing) const {
    static const json::array kEmpty;
    const json::value* v = Get(key);
    if (v == nullptr) {
      if (allow_missing) return &kEmpty;
      return Required(key);
    }
    if (!v->is_array()) return Error::Invalid(Field(key) + " must be an array", Field(key));
    if (v->as_array().size() > max) {
      return Error::Invalid(Field(key) + " must have at most " + std::to_string(max) + " elements", Field(key));
    }
    return &v->as_array();
  }

 private:
  const json::object& object_;
  std::string prefix_;
};

// ---- Shared pieces ---------------------------------------------------------------------

Result<std::vector<CheckResult>> ChecksFrom(const json::value& value, const std::string& field) {
  if (!value.is_array()) return Error::Invalid(field + " must be an array", field);
  const json::array& items = value.as_array();
  if (items.size() > kMaxChecks) return Error::Invalid(field + " must have at most 16 elements", field);
  std::vector<CheckResult> checks;
  checks.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string item_field = At(field, i);
    if (!items[i].is_object()) return Error::Invalid(item_field + " must be an object", item_field);
    const json::object& object = items[i].as_object();
    SP_RETURN_IF_ERROR(RejectUnknown(object, item_field, {"name", "status", "code"}));
    const Reader reader(object, item_field);
    CheckResult check;
    Result<std::string> name = reader.String("name");
    if (!name) return name.error();
    const std::optional<core::CheckName> parsed_name = core::ParseCheckName(*name);
    if (!parsed_name) return Error::Invalid(reader.Field("name") + " is not a known check", reader.Field("name"));
    check.name = *parsed_name;
    Result<std::string> status = reader.String("status");
    if (!status) return status.error();
    const std::optional<core::CheckStatus> parsed_status = core::ParseCheckStatus(*status);
    if (!parsed_status) {
      return Error::Invalid(reader.Field("status") + " must be one of: pass, warn, fail", reader.Field("status"));
    }
    check.status = *parsed_status;
    Result<std::string> code = reader.String("code");
    if (!code) return code.error();
    check.code = std::move(*code);
    checks.push_back(std::move(check));
  }
  if (Status s = core::ValidateChecks(checks); !s) {
    // core names "checks[i].code"; put it under this field.
    const std::string& core_field = s.error().field;
    const std::string renamed = field + core_field.substr(std::string_view("checks").size());
    return Rename(s.error(), renamed, core_field);
  }
  return checks;
}

Result<CacheType> CacheTypeFrom(const json::value& value, const std::string& field) {
  if (!value.is_string()) return Error::Invalid(field + " must be a string", field);
  const std::optional<CacheType> type = core::ParseCacheType(value.as_string());
  if (!type) return Error::Invalid(field + " is not a known Magento cache type", field);
  return *type;
}

Result<core::OperationParams> ParamsFrom(OperationName name, const json::value& value, const std::string& field) {
  core::OperationParams params;
  if (value.is_null()) return params;
  if (!value.is_object()) return Error::Invalid(field + " must be an object", field);
  const json::object& object = value.as_object();
  if (name != OperationName::kCacheFlush) {
    if (!object.empty()) {
      const std::string key_field = Join(field, object.begin()->key());
      return Error::Invalid(
          std::string(core::ToString(name)) + " takes no parameters: unknown field '" + key_field + "'", key_field);
    }
    return params;
  }
  SP_RETURN_IF_ERROR(RejectUnknown(object, field, {"types"}));
  const Reader reader(object, field);
  Result<const json::array*> types = reader.Array("types", core::AllCacheTypes().size(), true);
  if (!types) return types.error();
  for (std::size_t i = 0; i < (*types)->size(); ++i) {
    Result<CacheType> type = CacheTypeFrom((**types)[i], At(reader.Field("types"), i));
    if (!type) return type.error();
    params.cache_types.push_back(*type);
  }
  if (Status s = core::ValidateParams(name, params); !s)
    return Rename(s.error(), reader.Field("types"), "params.types");
  return params;
}

Result<core::OperationResult> ResultFrom(OperationName name, const json::value& value, const std::string& field) {
  using N = OperationName;
  if (!value.is_object()) return Error::Invalid(field + " must be an object", field);
  const json::object& object = value.as_object();
  const std::string_view op = core::ToString(name);
  switch (name) {
    case N::kHealthProbe: SP_RETURN_IF_ERROR(RejectUnknown(object, field, {"checks"}, op)); break;
    case N::kMaintenanceEnable:
    case N::kMaintenanceDisable: SP_RETURN_IF_ERROR(RejectUnknown(object, field, {"maintenance"}, op)); break;
    case N::kCacheFlush: SP_RETURN_IF_ERROR(RejectUnknown(object, field, {"flushed"}, op)); break;
    case N::kIndexerStatus: SP_RETURN_IF_ERROR(RejectUnknown(object, field, {"indexers"}, op)); break;
    case N::kDbStatus: SP_RETURN_IF_ERROR(RejectUnknown(object, field, {"schema_up_to_date"}, op)); break;
    case N::kReleaseReport: SP_RETURN_IF_ERROR(RejectUnknown(object, field, {"release", "magento_version"}, op)); break;
  }

  // Only this operation's keys remain; a missing array is an empty one, and
  // core::ValidateResult decides whether empty is allowed.
  const Reader reader(object, field);
  core::OperationResult result;
  if (const json::value* checks = reader.Get("checks")) {
    Result<std::vector<CheckResult>> parsed = ChecksFrom(*checks, reader.Field("checks"));
    if (!parsed) return parsed.error();
    result.checks = std::move(*parsed);
  }
  if (!reader.Missing("maintenance")) {
    Result<bool> b = reader.Bool("maintenance");
    if (!b) return b.error();
    result.maintenance = *b;
  }
  if (!reader.Missing("flushed")) {
    Result<const json::array*> flushed = reader.Array("flushed", core::AllCacheTypes().size(), false);
    if (!flushed) return flushed.error();
    for (std::size_t i = 0; i < (*flushed)->size(); ++i) {
      Result<CacheType> type = CacheTypeFrom((**flushed)[i], At(reader.Field("flushed"), i));
      if (!type) return type.error();
      result.flushed.push_back(*type);
    }
  }
  if (!reader.Missing("indexers")) {
    Result<const json::array*> indexers = reader.Array("indexers", kMaxIndexers, false);
    if (!indexers) return indexers.error();
    for (std::size_t i = 0; i < (*indexers)->size(); ++i) {
      const std::string item_field = At(reader.Field("indexers"), i);
      const json::value& item = (**indexers)[i];
      if (!item.is_object()) return Error::Invalid(item_field + " must be an object", item_field);
      SP_RETURN_IF_ERROR(RejectUnknown(item.as_object(), item_field, {"id", "status"}));
      const Reader item_reader(item.as_object(), item_field);
      core::IndexerState state;
      Result<std::string> id = item_reader.String("id");
      if (!id) return id.error();
      state.id = std::move(*id);
      Result<std::string> status = item_reader.String("status");
      if (!status) return status.error();
      const std::optional<core::IndexerStatus> parsed = core::ParseIndexerStatus(*status);
      if (!parsed) {
        return Error::Invalid(item_reader.Field("status") +
                                  " must be one of: ready, reindex_required, processing, "
                                  "suspended",
                              item_reader.Field("status"));
      }
      state.status = *parsed;
      result.indexers.push_back(std::move(state));
    }
  }
  if (!reader.Missing("schema_up_to_date")) {
    Result<bool> b = reader.Bool("schema_up_to_date");
    if (!b) return b.error();
    result.schema_up_to_date = *b;
  }
  {
    Result<std::optional<std::string>> release = reader.OptionalString("release");
    if (!release) return release.error();
    result.release = std::move(*release);
    Result<std::optional<std::string>> version = reader.OptionalString("magento_version");
    if (!version) return version.error();
    result.magento_version = std::move(*version);
  }

  if (Status s = core::ValidateResult(name, result); !s)
    return Rename(s.error(), field + s.error().field.substr(6), s.error().field);
  return result;
}

Result<OperationName> OperationNameFrom(const Reader& reader, std::string_view key) {
  Result<std::string> text = reader.String(key);
  if (!text) return text.error();
  const std::optional<OperationName> name = core::ParseOperationName(*text);
  if (!name) return Error::Invalid(reader.Field(key) + " is not an operation in the catalog", reader.Field(key));
  return *name;
}

// ---- Encoding helpers ------------------------------------------------------------------

json::array CacheTypesToJson(const std::vector<CacheType>& types) {
  json::array out;
  out.reserve(types.size());
  for (CacheType type : types) out.emplace_back(core::ToString(type));
  return out;
}

json::value OptionalToJson(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  return json::value(*text);
}

}  // namespace

// ---- Encode ----------------------------------------------------------------------------

std::string Encode(const EnrollRequest& message) {
  json::object o;
  o["store_id"] = message.store_id;
  o["enrollment_token"] = message.enrollment_token;
  o["agent_version"] = message.agent_version;
  return json::serialize(o);
}

std::string Encode(const EnrollResponse& message) {
  json::object o;
  o["agent_id"] = message.agent_id;
  o["store_id"] = message.store_id;
  o["credential"] = message.credential;
  o["heartbeat_interval_s"] = message.heartbeat_interval_s;
  return json::serialize(o);
}

std::string Encode(const Heartbeat& message) {
  json::object o;
  o["agent_version"] = message.agent_version;
  o["session"] = message.session;
  o["release"] = OptionalToJson(message.release);
  if (message.isolation_mode) {
    o["isolation_mode"] = core::ToString(*message.isolation_mode);
  } else {
    o["isolation_mode"] = nullptr;
  }
  json::array allowed;
  allowed.reserve(message.allowed_operations.size());
  for (OperationName name : message.allowed_operations) allowed.emplace_back(core::ToString(name));
  o["allowed_operations"] = std::move(allowed);
  o["checks"] = ChecksToJson(message.checks);
  return json::serialize(o);
}

std::string Encode(const HeartbeatAck& message) {
  json::object o;
  o["heartbeat_interval_s"] = message.heartbeat_interval_s;
  o["server_time_ms"] = message.server_time_ms;
  return json::serialize(o);
}

std::string Encode(const std::vector<OperationEnvelope>& operations) {
  json::array items;
  items.reserve(operations.size());
  for (const OperationEnvelope& op : operations) {
    json::object o;
    o["id"] = op.id;
    o["name"] = core::ToString(op.name);
    o["params"] = ParamsToJson(op.name, op.params);
    o["timeout_s"] = op.timeout_s;
    o["expires_at_ms"] = op.expires_at_ms;
    items.emplace_back(std::move(o));
  }
  json::object out;
  out["operations"] = std::move(items);
  return json::serialize(out);
}

std::string Encode(const OperationReport& report) {
  json::object o;
  if (report.succeeded) {
    o["outcome"] = "succeeded";
    o["result"] = ResultToJson(report.result);
  } else {
    o["outcome"] = "failed";
    o["code"] = report.code;
  }
  o["duration_ms"] = report.duration_ms;
  return json::serialize(o);
}

// ---- Decode ----------------------------------------------------------------------------

Result<EnrollRequest> DecodeEnrollRequest(std::string_view body) {
  Result<json::object> object = ParseBody(body);
  if (!object) return object.error();
  SP_RETURN_IF_ERROR(RejectUnknown(*object, "", {"store_id", "enrollment_token", "agent_version"}));
  const Reader reader(*object, "");
  EnrollRequest out;

  Result<std::string> store_id = reader.String("store_id");
  if (!store_id) return store_id.error();
  if (Status s = core::ValidateStoreId(*store_id); !s) return Rename(s.error(), "store_id", "id");
  out.store_id = std::move(*store_id);

  Result<std::string> token = reader.String("enrollment_token");
  if (!token) return token.error();
  if (!IsPrefixedSecret(*token, "spe_", kMaxEnrollmentTokenLength)) {
    return Error::Invalid("enrollment_token must be an enrollment token (spe_...)", "enrollment_token");
  }
  out.enrollment_token = std::move(*token);

  Result<std::string> version = reader.String("agent_version");
  if (!version) return version.error();
  if (version->empty() || version->size() > kMaxAgentVersionLength || !AllOf(*version, IsAgentVersionChar)) {
    return Error::Invalid("agent_version must match [0-9A-Za-z.+-]{1,32}", "agent_version");
  }
  out.agent_version = std::move(*version);
  return out;
}

Result<EnrollResponse> DecodeEnrollResponse(std::string_view body) {
  Result<json::object> object = ParseBody(body);
  if (!object) return object.error();
  SP_RETURN_IF_ERROR(RejectUnknown(*object, "", {"agent_id", "store_id", "credential", "heartbeat_interval_s"}));
  const Reader reader(*object, "");
  EnrollResponse out;

  Result<std::string> agent_id = reader.String("agent_id");
  if (!agent_id) return agent_id.error();
  if (!IsPrefixedHexId(*agent_id, "agt_")) {
    return Error::Invalid("agent_id must be \"agt_\" followed by 1 to 64 hex digits", "agent_id");
  }
  out.agent_id = std::move(*agent_id);

  Result<std::string> store_id = reader.String("store_id");
  if (!store_id) return store_id.error();
  if (Status s = core::ValidateStoreId(*store_id); !s) return Rename(s.error(), "store_id", "id");
  out.store_id = std::move(*store_id);

  Result<std::string> credential = reader.String("credential");
  if (!credential) return credential.error();
  if (!IsPrefixedSecret(*credential, "spa_", kMaxCredentialLength)) {
    return Error::Invalid("credential must be an agent credential (spa_...)", "credential");
  }
  out.credential = std::move(*credential);

  Result<std::int64_t> interval = reader.Integer("heartbeat_interval_s", 1, kMaxHeartbeatIntervalS);
  if (!interval) return interval.error();
  out.heartbeat_interval_s = static_cast<int>(*interval);
  return out;
}

Result<Heartbeat> DecodeHeartbeat(std::string_view body) {
  Result<json::object> object = ParseBody(body);
  if (!object) return object.error();
  SP_RETURN_IF_ERROR(RejectUnknown(
      *object, "", {"agent_version", "session", "release", "isolation_mode", "allowed_operations", "checks"}));
  const Reader reader(*object, "");
  Heartbeat out;

  Result<std::string> version = reader.String("agent_version");
  if (!version) return version.error();
  if (version->empty() || version->size() > kMaxAgentVersionLength || !AllOf(*version, IsAgentVersionChar)) {
    return Error::Invalid("agent_version must match [0-9A-Za-z.+-]{1,32}", "agent_version");
  }
  out.agent_version = std::move(*version);

  Result<std::string> session = reader.String("session");
  if (!session) return session.error();
  if (session->size() < kMinSessionLength || session->size() > kMaxSessionLength || !AllOf(*session, IsLowerHex)) {
    return Error::Invalid("session must be 16 to 64 lowercase hex digits", "session");
  }
  out.session = std::move(*session);

  Result<std::optional<std::string>> release = reader.OptionalString("release");
  if (!release) return release.error();
  if (*release) {
    if (Status s = core::ValidateReleaseId(**release); !s) return s.error();
  }
  out.release = std::move(*release);

  Result<std::optional<std::string>> isolation = reader.OptionalString("isolation_mode");
  if (!isolation) return isolation.error();
  if (*isolation) {
    out.isolation_mode = core::ParseIsolationMode(**isolation);
    if (!out.isolation_mode) {
      return Error::Invalid("isolation_mode must be one of: shared, dedicated, isolated", "isolation_mode");
    }
  }

  Result<const json::array*> allowed = reader.Array("allowed_operations", kMaxAllowedOperations, false);
  if (!allowed) return allowed.error();
  for (std::size_t i = 0; i < (*allowed)->size(); ++i) {
    const std::string field = At("allowed_operations", i);
    const json::value& item = (**allowed)[i];
    if (!item.is_string()) return Error::Invalid(field + " must be a string", field);
    const std::optional<OperationName> name = core::ParseOperationName(item.as_string());
    if (!name) return Error::Invalid(field + " is not an operation in the catalog", field);
    for (OperationName seen : out.allowed_operations) {
      if (seen == *name) return Error::Invalid(field + " repeats '" + std::string(core::ToString(*name)) + "'", field);
    }
    out.allowed_operations.push_back(*name);
  }

  const json::value* checks = reader.Get("checks");
  if (checks == nullptr) return reader.Required("checks");
  Result<std::vector<CheckResult>> parsed = ChecksFrom(*checks, "checks");
  if (!parsed) return parsed.error();
  out.checks = std::move(*parsed);
  return out;
}

Result<HeartbeatAck> DecodeHeartbeatAck(std::string_view body) {
  Result<json::object> object = ParseBody(body);
  if (!object) return object.error();
  SP_RETURN_IF_ERROR(RejectUnknown(*object, "", {"heartbeat_interval_s", "server_time_ms"}));
  const Reader reader(*object, "");
  HeartbeatAck out;
  Result<std::int64_t> interval = reader.Integer("heartbeat_interval_s", 1, kMaxHeartbeatIntervalS);
  if (!interval) return interval.error();
  out.heartbeat_interval_s = static_cast<int>(*interval);
  Result<std::int64_t> now = reader.Integer("server_time_ms", 0, std::numeric_limits<std::int64_t>::max());
  if (!now) return now.error();
  out.server_time_ms = *now;
  return out;
}

Result<std::vector<OperationEnvelope>> DecodeOperations(std::string_view body) {
  Result<json::object> object = ParseBody(body);
  if (!object) return object.error();
  SP_RETURN_IF_ERROR(RejectUnknown(*object, "", {"operations"}));
  const Reader reader(*object, "");
  Result<const json::array*> items = reader.Array("operations", kMaxOperations, false);
  if (!items) return items.error();

  std::vector<OperationEnvelope> out;
  out.reserve((*items)->size());
  for (std::size_t i = 0; i < (*items)->size(); ++i) {
    const std::string field = At("operations", i);
    const json::value& item = (**items)[i];
    if (!item.is_object()) return Error::Invalid(field + " must be an object", field);
    SP_RETURN_IF_ERROR(RejectUnknown(item.as_object(), field, {"id", "name", "params", "timeout_s", "expires_at_ms"}));
    const Reader op_reader(item.as_object(), field);
    OperationEnvelope op;

    Result<std::string> id = op_reader.String("id");
    if (!id) return id.error();
    if (!IsPrefixedHexId(*id, "op_")) {
      return Error::Invalid(op_reader.Field("id") + " must be \"op_\" followed by 1 to 64 hex digits",
                            op_reader.Field("id"));
    }
    op.id = std::move(*id);

    Result<OperationName> name = OperationNameFrom(op_reader, "name");
    if (!name) return name.error();
    op.name = *name;

    const json::value* params_value = op_reader.Get("params");
    Result<core::OperationParams> params =
        ParamsFrom(op.name, params_value == nullptr ? json::value(nullptr) : *params_value, op_reader.Field("params"));
    if (!params) return params.error();
    op.params = std::move(*params);

    Result<std::int64_t> timeout = op_reader.Integer("timeout_s", 1, kMaxTimeoutS);
    if (!timeout) return timeout.error();
    op.timeout_s = static_cast<int>(*timeout);

    Result<std::int64_t> expires = op_reader.Integer("expires_at_ms", 0, std::numeric_limits<std::int64_t>::max());
    if (!expires) return expires.error();
    op.expires_at_ms = *expires;
    out.push_back(std::move(op));
  }
  return out;
}

Result<OperationReport> DecodeOperationReport(core::OperationName name, std::string_view body) {
  Result<json::object> object = ParseBody(body);
  if (!object) return object.error();
  SP_RETURN_IF_ERROR(RejectUnknown(*object, "", {"outcome", "result", "code", "duration_ms"}));
  const Reader reader(*object, "");
  OperationReport out;

  Result<std::string> outcome = reader.String("outcome");
  if (!outcome) return outcome.error();
  if (*outcome == "succeeded") {
    out.succeeded = true;
    if (object->contains("code")) return Error::Invalid("code must be absent when the outcome is succeeded", "code");
    const json::value* result = reader.Get("result");
    if (result == nullptr) return reader.Required("result");
    Result<core::OperationResult> parsed = ResultFrom(name, *result, "result");
    if (!parsed) return parsed.error();
    out.result = std::move(*parsed);
  } else if (*outcome == "failed") {
    out.succeeded = false;
    if (object->contains("result")) return Error::Invalid("result must be absent when the outcome is failed", "result");
    Result<std::string> code = reader.String("code");
    if (!code) return code.error();
    if (Status s = core::ValidateFailureCode(*code); !s) return s.error();
    out.code = std::move(*code);
  } else {
    return Error::Invalid("outcome must be one of: succeeded, failed", "outcome");
  }

  Result<std::int64_t> duration = reader.Integer("duration_ms", 0, std::numeric_limits<std::int64_t>::max());
  if (!duration) return duration.error();
  out.duration_ms = *duration;
  return out;
}

// ---- Params, results, checks as JSON values ---------------------------------------------

boost::json::object ParamsToJson(core::OperationName name, const core::OperationParams& params) {
  json::object o;
  if (name == OperationName::kCacheFlush && !params.cache_types.empty()) {
    o["types"] = CacheTypesToJson(params.cache_types);
  }
  return o;
}

Result<core::OperationParams> ParamsFromJson(core::OperationName name, const boost::json::value& params) {
  return ParamsFrom(name, params, "params");
}

boost::json::object ResultToJson(const core::OperationResult& result) {
  json::object o;
  if (!result.checks.empty()) o["checks"] = ChecksToJson(result.checks);
  if (result.maintenance) o["maintenance"] = *result.maintenance;
  if (!result.flushed.empty()) o["flushed"] = CacheTypesToJson(result.flushed);
  if (!result.indexers.empty()) {
    json::array indexers;
    indexers.reserve(result.indexers.size());
    for (const core::IndexerState& state : result.indexers) {
      json::object item;
      item["id"] = state.id;
      item["status"] = core::ToString(state.status);
      indexers.emplace_back(std::move(item));
    }
    o["indexers"] = std::move(indexers);
  }
  if (result.schema_up_to_date) o["schema_up_to_date"] = *result.schema_up_to_date;
  if (result.release) o["release"] = *result.release;
  if (result.magento_version) o["magento_version"] = *result.magento_version;
  return o;
}

Result<core::OperationResult> ResultFromJson(core::OperationName name, const boost::json::value& result) {
  return ResultFrom(name, result, "result");
}

boost::json::array ChecksToJson(const std::vector<core::CheckResult>& checks) {
  json::array out;
  out.reserve(checks.size());
  for (const CheckResult& check : checks) {
    json::object item;
    item["name"] = core::ToString(check.name);
    item["status"] = core::ToString(check.status);
    item["code"] = check.code;
    out.emplace_back(std::move(item));
  }
  return out;
}

Result<std::vector<core::CheckResult>> ChecksFromJson(const boost::json::value& checks) {
  return ChecksFrom(checks, "checks");
}

}  // namespace storeplane::protocol
