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

// Programming errors in a batch (kInternal), refused before it reaches a database: no
// audit entry, an update that does not advance its version by one, missing ids, an outbox
// entry for another run, a rollout target of another rollout.
Status CheckBatch(const WriteBatch& batch);

}  // namespace storeplane::db::support
