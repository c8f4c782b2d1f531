// Pure helpers shared by the storage back ends (SQLite and PostgreSQL): messages, limits,
// string-list JSON, and the checks every WriteBatch passes before it reaches a database.
// Private to src/db.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/store.h"
#include "db/repository.h"

namespace storeplane::db::support {

std::string Quoted(std::string_view text);
Error Unreadable(std::string_view what, std::string_view id);
Status CheckLimit(int limit);  // 1..1000, else kInvalidArgument
// Labels <-> the JSON object stored in stores.labels_json.
std::string EncodeLabels(const core::Labels& labels);
std::optional<core::Labels> DecodeLabels(const std::string& json);
// A list of strings <-> a JSON array of strings.
std::string EncodeStrings(const std::vector<std::string>& strings);
std::optional<std::vector<std::string>> DecodeStrings(const std::string& json);

// Checks of agents' telemetry before it is written (kInternal on an unknown availability,
// health or kind of success, or a success without a store or name), shared by both back ends.
bool IsSuccessKind(std::string_view kind);  // "operation" | "check" | "pipeline"
Status CheckSuccess(const LastSuccess& success);
Status CheckTelemetry(const Repository::TelemetryBatch& batch);
// Empty checks are stored as the empty JSON array, the shape readers expect.
std::string_view ChecksOrEmpty(const std::string& checks_json);

// Programming errors in a batch (kInternal), refused before it reaches a database: no
// audit entry, an update that does not advance its version by one, missing ids, an outbox
// entry for another run, a rollout target of another rollout.
Status CheckBatch(const WriteBatch& batch);

}  // namespace storeplane::db::support
