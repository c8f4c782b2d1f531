// The closed catalog of operations a shop agent performs on its store: their names, typed
// parameters and closed result schemas, the agent's health checks, and the operation state
// machine (queued -> delivered -> succeeded | failed | expired). No field here can carry a
// command, free text from the store, or business data: every value is an enum, a bool, or
// a string checked against a narrow pattern.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/store.h"

namespace storeplane::core {

enum class OperationName {
  kHealthProbe,
  kMaintenanceEnable,
  kMaintenanceDisable,
  kCacheFlush,
  kIndexerStatus,
  kDbStatus,
  kReleaseReport,
};

std::string_view ToString(OperationName name);  // "health.probe", "cache.flush", ...
std::optional<OperationName> ParseOperationName(std::string_view text);
const std::vector<OperationName>& AllOperationNames();
// The authority action that allows requesting it: "operation.run.<name>".
std::string OperationAction(OperationName name);

struct OperationSpec {
  OperationName name;
  std::string_view summary;  // one line, for docs and the CLI
  bool changes_store;        // maintenance.enable/disable and cache.flush change the store
  int default_timeout_s;     // how long the agent lets the command run
};
const OperationSpec& SpecOf(OperationName name);

// Magento's standard cache types (bin/magento cache:flush <type>...).
enum class CacheType {
  kConfig,
  kLayout,
  kBlockHtml,
  kCollections,
  kReflection,
  kDbDdl,
  kCompiledConfig,
  kEav,
  kCustomerNotification,
  kConfigIntegration,
  kConfigIntegrationApi,
  kFullPage,
  kConfigWebservice,
  kTranslate,
};
std::string_view ToString(CacheType type);  // Magento's names: "config", "full_page", ...
std::optional<CacheType> ParseCacheType(std::string_view text);
const std::vector<CacheType>& AllCacheTypes();

// Typed parameters. Only cache.flush has any: the cache types to flush, each at most once;
// empty means every type. Every other operation takes none.
struct OperationParams {
  std::vector<CacheType> cache_types;
};
// kInvalidArgument (field "params.types") when `params` does not fit `name`'s schema.
Status ValidateParams(OperationName name, const OperationParams& params);

// ---- Health checks the agent runs and reports -------------------------------------------
enum class CheckName { kStorefront, kMaintenance, kCron, kDisk, kRelease, kIsolation };
std::string_view ToString(CheckName name);  // "storefront", "maintenance", "cron", "disk", "release", "isolation"
std::optional<CheckName> ParseCheckName(std::string_view text);
const std::vector<CheckName>& AllCheckNames();

enum class CheckStatus { kPass, kWarn, kFail };
std::string_view ToString(CheckStatus status);  // "pass" | "warn" | "fail"
std::optional<CheckStatus> ParseCheckStatus(std::string_view text);

// One check's verdict: a status and a machine code such as "http_200", "maintenance_on",
// "cron_stale", "disk_low" (pattern [a-z0-9_]{1,48}), never free text.
struct CheckResult {
  CheckName name = CheckName::kStorefront;
  CheckStatus status = CheckStatus::kPass;
  std::string code;
  bool operator==(const CheckResult&) const = default;
};
Status ValidateCheckCode(std::string_view code);
// Each check name at most once, every code valid.
Status ValidateChecks(const std::vector<CheckResult>& checks);

// A release id as CI/CD names it: [A-Za-z0-9][A-Za-z0-9._+-]{0,63}.
Status ValidateReleaseId(std::string_view release);
// A Magento version: digits and dots (2 to 4 parts), optionally "-p<digits>", e.g. "2.4.6-p3".
Status ValidateMagentoVersion(std::string_view version);

// ---- Results -------------------------------------------------------------------------
enum class IndexerStatus { kReady, kReindexRequired, kProcessing, kSuspended };
std::string_view ToString(IndexerStatus status);  // "ready" | "reindex_required" | "processing" | "suspended"
std::optional<IndexerStatus> ParseIndexerStatus(std::string_view text);

struct IndexerState {
  std::string id;  // Magento's indexer id, [a-z0-9_]{1,64}, e.g. "catalog_product_price"
  IndexerStatus status = IndexerStatus::kReady;
  bool operator==(const IndexerState&) const = default;
};

// The closed result of a successful operation. Exactly the fields of the operation's
// schema are set (docs/OPERATIONS.md):
//   health.probe        checks
//   maintenance.enable  maintenance (true)     maintenance.disable  maintenance (false)
//   cache.flush         flushed (the types flushed; all types when none were asked)
//   indexer.status      indexers
//   db.status           schema_up_to_date
//   release.report      release (may be absent when no marker exists), magento_version
struct OperationResult {
  std::vector<CheckResult> checks;
  std::optional<bool> maintenance;
  std::vector<CacheType> flushed;
  std::vector<IndexerState> indexers;
  std::optional<bool> schema_up_to_date;
  std::optional<std::string> release;
  std::optional<std::string> magento_version;
  bool operator==(const OperationResult&) const = default;
};
// kInvalidArgument naming the field when a field of another operation is set, a required
// one is missing, or a value breaks its pattern.
Status ValidateResult(OperationName name, const OperationResult& result);

// Why an operation failed, from a closed set:
//   timeout, refused_not_allowed, refused_unknown, exit_nonzero, parse_error, interrupted,
//   spawn_failed, output_too_large, expired, agent_revoked
const std::vector<std::string_view>& FailureCodes();
Status ValidateFailureCode(std::string_view code);

// ---- State machine -------------------------------------------------------------------
enum class OperationState { kQueued, kDelivered, kSucceeded, kFailed, kExpired };
std::string_view ToString(OperationState state);  // "queued", "delivered", ...
std::optional<OperationState> ParseOperationState(std::string_view text);
bool IsFinal(OperationState state);

enum class OperationEvent {
  kDeliver,  // handed to the agent's long-poll (again, on redelivery)
  kSucceed,  // the agent reported success
  kFail,     // the agent reported failure (or refusal)
  kExpire,   // not finished by its deadline
};
std::string_view ToString(OperationEvent event);
// queued --deliver--> delivered --deliver--> delivered (redelivery)
// queued|delivered --succeed--> succeeded, --fail--> failed, --expire--> expired
// Everything else (any event on a final state, succeed/fail on queued) is kConflict.
Result<OperationState> TransitionOperation(OperationState from, OperationEvent event);

}  // namespace storeplane::core
