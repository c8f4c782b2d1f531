// The JSON wire format of the agent channel (/agent/v1/...) and of operation params and
// results, shared by storeplaned and shop-agent so that both sides agree byte for byte.
// Decoding is strict: unknown keys, wrong types, values outside the closed schemas and
// oversized arrays are kInvalidArgument errors naming the field. docs/OPERATIONS.md
// describes every message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "core/operation.h"
#include "core/result.h"
#include "core/store.h"

namespace storeplane::protocol {

// POST /agent/v1/enroll (no credential yet; the one-time enrollment token authenticates)
// {"store_id": "...", "enrollment_token": "spe_...", "agent_version": "0.1.0"}
struct EnrollRequest {
  std::string store_id;
  std::string enrollment_token;
  std::string agent_version;  // [0-9A-Za-z.+-]{1,32}
};
// 201 {"agent_id": "agt_...", "store_id": "...", "credential": "spa_...", "heartbeat_interval_s": 10}
struct EnrollResponse {
  std::string agent_id;
  std::string store_id;
  std::string credential;
  int heartbeat_interval_s = 10;
};

// POST /agent/v1/heartbeat (Authorization: Bearer spa_...)
// {"agent_version": "0.1.0", "session": "<16..64 hex>", "release": "r42" | null,
//  "isolation_mode": "shared" | null, "allowed_operations": ["health.probe", ...],
//  "checks": [{"name": "disk", "status": "pass", "code": "disk_ok"}, ...]}
struct Heartbeat {
  std::string agent_version;
  std::string session;  // random per agent process start
  std::optional<std::string> release;
  std::optional<core::IsolationMode> isolation_mode;
  std::vector<core::OperationName> allowed_operations;  // the agent's local allow-list
  std::vector<core::CheckResult> checks;
};
// 200 {"heartbeat_interval_s": 10, "server_time_ms": 1700000000000}
struct HeartbeatAck {
  int heartbeat_interval_s = 10;
  std::int64_t server_time_ms = 0;
};

// One operation handed to the agent by GET /agent/v1/operations?session=...&wait_ms=...
// 200 {"operations": [{"id": "op_...", "name": "cache.flush", "params": {"types": [...]},
//                      "timeout_s": 120, "expires_at_ms": ...}]}; 204 when none came in time.
struct OperationEnvelope {
  std::string id;  // "op_" + hex
  core::OperationName name = core::OperationName::kHealthProbe;
  core::OperationParams params;
  int timeout_s = 60;
  std::int64_t expires_at_ms = 0;
};

// POST /agent/v1/operations/{id}/result
// {"outcome": "succeeded", "result": {...}, "duration_ms": 12}
// {"outcome": "failed", "code": "timeout", "duration_ms": 60000}
struct OperationReport {
  bool succeeded = false;
  std::string code;              // failures only: one of core::FailureCodes()
  core::OperationResult result;  // successes only: the operation's closed schema
  std::int64_t duration_ms = 0;
};

std::string Encode(const EnrollRequest& message);
std::string Encode(const EnrollResponse& message);
std::string Encode(const Heartbeat& message);
std::string Encode(const HeartbeatAck& message);
std::string Encode(const std::vector<OperationEnvelope>& operations);  // {"operations": [...]}
std::string Encode(const OperationReport& report);

Result<EnrollRequest> DecodeEnrollRequest(std::string_view body);
Result<EnrollResponse> DecodeEnrollResponse(std::string_view body);
Result<Heartbeat> DecodeHeartbeat(std::string_view body);
Result<HeartbeatAck> DecodeHeartbeatAck(std::string_view body);
Result<std::vector<OperationEnvelope>> DecodeOperations(std::string_view body);
// The report's result is checked against `name`'s schema (core::ValidateResult).
Result<OperationReport> DecodeOperationReport(core::OperationName name, std::string_view body);

// Params and results as JSON values, for the operator API and the database.
// Params: {} for every operation but cache.flush: {"types": ["config", "full_page"]}.
boost::json::object ParamsToJson(core::OperationName name, const core::OperationParams& params);
// A missing or null params value is the empty object. Unknown keys are refused.
Result<core::OperationParams> ParamsFromJson(core::OperationName name, const boost::json::value& params);
// Only the fields the operation's schema sets, e.g. {"maintenance": true}.
boost::json::object ResultToJson(const core::OperationResult& result);
Result<core::OperationResult> ResultFromJson(core::OperationName name, const boost::json::value& result);
// [{"name": "disk", "status": "pass", "code": "disk_ok"}, ...]
boost::json::array ChecksToJson(const std::vector<core::CheckResult>& checks);
Result<std::vector<core::CheckResult>> ChecksFromJson(const boost::json::value& checks);

}  // namespace storeplane::protocol
