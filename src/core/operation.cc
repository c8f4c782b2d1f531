#include "core/operation.h"

#include <array>
#include <cstddef>
#include <set>
#include <string>

namespace storeplane::core {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLowerAlnumOrUnderscore(char c) { return (c >= 'a' && c <= 'z') || IsDigit(c) || c == '_'; }
bool IsAsciiAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c); }

// [a-z0-9_]{1,max}
bool IsMachineCode(std::string_view text, std::size_t max) {
  if (text.empty() || text.size() > max) return false;
  for (char c : text) {
    if (!IsLowerAlnumOrUnderscore(c)) return false;
  }
  return true;
}

// 1..5 digits: a part of a version number.
bool IsVersionNumber(std::string_view text) {
  if (text.empty() || text.size() > 5) return false;
  for (char c : text) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

std::string Indexed(std::string_view field, std::size_t i) {
  return std::string(field) + "[" + std::to_string(i) + "]";
}

constexpr std::size_t kMaxCheckCodeLength = 48;
constexpr std::size_t kMaxIndexerIdLength = 64;
constexpr std::size_t kMaxIndexers = 256;
constexpr std::size_t kMaxReleaseIdLength = 64;

}  // namespace

// ---- Catalog ---------------------------------------------------------------------------

std::string_view ToString(OperationName name) {
  switch (name) {
    case OperationName::kHealthProbe: return "health.probe";
    case OperationName::kMaintenanceEnable: return "maintenance.enable";
    case OperationName::kMaintenanceDisable: return "maintenance.disable";
    case OperationName::kCacheFlush: return "cache.flush";
    case OperationName::kIndexerStatus: return "indexer.status";
    case OperationName::kDbStatus: return "db.status";
    case OperationName::kReleaseReport: return "release.report";
  }
  return "health.probe";
}

std::optional<OperationName> ParseOperationName(std::string_view text) {
  for (OperationName name : AllOperationNames()) {
    if (ToString(name) == text) return name;
  }
  return std::nullopt;
}

const std::vector<OperationName>& AllOperationNames() {
  static const std::vector<OperationName> kAll = {
      OperationName::kHealthProbe,   OperationName::kMaintenanceEnable, OperationName::kMaintenanceDisable,
      OperationName::kCacheFlush,    OperationName::kIndexerStatus,     OperationName::kDbStatus,
      OperationName::kReleaseReport,
  };
  return kAll;
}

std::string OperationAction(OperationName name) { return "operation.run." + std::string(ToString(name)); }

const OperationSpec& SpecOf(OperationName name) {
  static const std::array<OperationSpec, 7> kSpecs = {{
      {OperationName::kHealthProbe, "Run the agent's health checks now", false, 30},
      {OperationName::kMaintenanceEnable, "Put the store into maintenance mode", true, 120},
      {OperationName::kMaintenanceDisable, "Take the store out of maintenance mode", true, 120},
      {OperationName::kCacheFlush, "Flush the given Magento cache types, or all of them", true, 300},
      {OperationName::kIndexerStatus, "Report the status of every Magento indexer", false, 60},
      {OperationName::kDbStatus, "Report whether the database schema and data are up to date", false, 120},
      {OperationName::kReleaseReport, "Report the deployed release and the Magento version", false, 30},
  }};
  for (const OperationSpec& spec : kSpecs) {
    if (spec.name == name) return spec;
  }
  return kSpecs[0];
}

// ---- Cache types -----------------------------------------------------------------------

std::string_view ToString(CacheType type) {
  switch (type) {
    case CacheType::kConfig: return "config";
    case CacheType::kLayout: return "layout";
    case CacheType::kBlockHtml: return "block_html";
    case CacheType::kCollections: return "collections";
    case CacheType::kReflection: return "reflection";
    case CacheType::kDbDdl: return "db_ddl";
    case CacheType::kCompiledConfig: return "compiled_config";
    case CacheType::kEav: return "eav";
    case CacheType::kCustomerNotification: return "customer_notification";
    case CacheType::kConfigIntegration: return "config_integration";
    case CacheType::kConfigIntegrationApi: return "config_integration_api";
    case CacheType::kFullPage: return "full_page";
    case CacheType::kConfigWebservice: return "config_webservice";
    case CacheType::kTranslate: return "translate";
  }
  return "config";
}

std::optional<CacheType> ParseCacheType(std::string_view text) {
  for (CacheType type : AllCacheTypes()) {
    if (ToString(type) == text) return type;
  }
  return std::nullopt;
}

const std::vector<CacheType>& AllCacheTypes() {
  static const std::vector<CacheType> kAll = {
      CacheType::kConfig,
      CacheType::kLayout,
      CacheType::kBlockHtml,
      CacheType::kCollections,
      CacheType::kReflection,
      CacheType::kDbDdl,
      CacheType::kCompiledConfig,
      CacheType::kEav,
      CacheType::kCustomerNotification,
      CacheType::kConfigIntegration,
      CacheType::kConfigIntegrationApi,
      CacheType::kFullPage,
      CacheType::kConfigWebservice,
      CacheType::kTranslate,
  };
  return kAll;
}

Status ValidateParams(OperationName name, const OperationParams& params) {
  constexpr const char* kField = "params.types";
  if (name != OperationName::kCacheFlush) {
    if (!params.cache_types.empty()) {
      return Error::Invalid(std::string(ToString(name)) + " takes no parameters", kField);
    }
    return Status::Ok();
  }
  std::set<CacheType> seen;
  for (CacheType type : params.cache_types) {
    if (!seen.insert(type).second) {
      return Error::Invalid("params.types names cache type '" + std::string(ToString(type)) + "' more than once",
                            kField);
    }
  }
  return Status::Ok();
}

// ---- Health checks ---------------------------------------------------------------------

std::string_view ToString(CheckName name) {
  switch (name) {
    case CheckName::kStorefront: return "storefront";
    case CheckName::kMaintenance: return "maintenance";
    case CheckName::kCron: return "cron";
    case CheckName::kDisk: return "disk";
    case CheckName::kRelease: return "release";
    case CheckName::kIsolation: return "isolation";
  }
  return "storefront";
}

std::optional<CheckName> ParseCheckName(std::string_view text) {
  for (CheckName name : AllCheckNames()) {
    if (ToString(name) == text) return name;
  }
  return std::nullopt;
}

const std::vector<CheckName>& AllCheckNames() {
  static const std::vector<CheckName> kAll = {
      CheckName::kStorefront, CheckName::kMaintenance, CheckName::kCron,
      CheckName::kDisk,       CheckName::kRelease,     CheckName::kIsolation,
  };
  return kAll;
}

std::string_view ToString(CheckStatus status) {
  switch (status) {
    case CheckStatus::kPass: return "pass";
    case CheckStatus::kWarn: return "warn";
    case CheckStatus::kFail: return "fail";
  }
  return "pass";
}

std::optional<CheckStatus> ParseCheckStatus(std::string_view text) {
  for (CheckStatus status : {CheckStatus::kPass, CheckStatus::kWarn, CheckStatus::kFail}) {
    if (ToString(status) == text) return status;
  }
  return std::nullopt;
}

Status ValidateCheckCode(std::string_view code) {
  if (!IsMachineCode(code, kMaxCheckCodeLength)) {
    return Error::Invalid("code must be 1 to 48 characters of a-z, 0-9 and '_'", "code");
  }
  return Status::Ok();
}

Status ValidateChecks(const std::vector<CheckResult>& checks) {
  std::set<CheckName> seen;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const CheckResult& check = checks[i];
    if (!seen.insert(check.name).second) {
      const std::string field = Indexed("checks", i) + ".name";
      return Error::Invalid(
          field + " repeats check '" + std::string(ToString(check.name)) + "'; each check is reported at most once",
          field);
    }
    if (Status s = ValidateCheckCode(check.code); !s) {
      const std::string field = Indexed("checks", i) + ".code";
      return Error::Invalid(field + " must be 1 to 48 characters of a-z, 0-9 and '_'", field);
    }
  }
  return Status::Ok();
}

Status ValidateReleaseId(std::string_view release) {
  constexpr const char* kField = "release";
  constexpr const char* kRule = "release must match [A-Za-z0-9][A-Za-z0-9._+-]{0,63}";
  if (release.empty() || release.size() > kMaxReleaseIdLength) return Error::Invalid(kRule, kField);
  if (!IsAsciiAlnum(release.front())) return Error::Invalid(kRule, kField);
  for (char c : release) {
    if (!IsAsciiAlnum(c) && c != '.' && c != '_' && c != '+' && c != '-') return Error::Invalid(kRule, kField);
  }
  return Status::Ok();
}

Status ValidateMagentoVersion(std::string_view version) {
  constexpr const char* kField = "magento_version";
  const Error invalid = Error::Invalid(
      "magento_version must be 2 to 4 dot-separated numbers, optionally followed by -p<number>, "
      "like 2.4.6 or 2.4.6-p3",
      kField);
  std::string_view numbers = version;
  if (const std::size_t dash = version.find('-'); dash != std::string_view::npos) {
    numbers = version.substr(0, dash);
    const std::string_view patch = version.substr(dash + 1);
    if (patch.size() < 2 || patch.front() != 'p' || !IsVersionNumber(patch.substr(1))) return invalid;
  }
  std::size_t parts = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = numbers.find('.', start);
    const std::string_view part =
        numbers.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!IsVersionNumber(part)) return invalid;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts < 2 || parts > 4) return invalid;
  return Status::Ok();
}

// ---- Results ---------------------------------------------------------------------------

std::string_view ToString(IndexerStatus status) {
  switch (status) {
    case IndexerStatus::kReady: return "ready";
    case IndexerStatus::kReindexRequired: return "reindex_required";
    case IndexerStatus::kProcessing: return "processing";
    case IndexerStatus::kSuspended: return "suspended";
  }
  return "ready";
}

std::optional<IndexerStatus> ParseIndexerStatus(std::string_view text) {
  for (IndexerStatus status : {IndexerStatus::kReady, IndexerStatus::kReindexRequired, IndexerStatus::kProcessing,
                               IndexerStatus::kSuspended}) {
    if (ToString(status) == text) return status;
  }
  return std::nullopt;
}

Status ValidateResult(OperationName name, const OperationResult& result) {
  using N = OperationName;
  const std::string op(ToString(name));
  const auto foreign = [&op](std::string_view field) {
    const std::string path = "result." + std::string(field);
    return Error::Invalid(path + " is not part of the result of " + op, path);
  };
  const auto required = [&op](std::string_view field) {
    const std::string path = "result." + std::string(field);
    return Error::Invalid(path + " is required in the result of " + op, path);
  };

  // No field of another operation's schema.
  if (!result.checks.empty() && name != N::kHealthProbe) return foreign("checks");
  if (result.maintenance && name != N::kMaintenanceEnable && name != N::kMaintenanceDisable) {
    return foreign("maintenance");
  }
  if (!result.flushed.empty() && name != N::kCacheFlush) return foreign("flushed");
  if (!result.indexers.empty() && name != N::kIndexerStatus) return foreign("indexers");
  if (result.schema_up_to_date && name != N::kDbStatus) return foreign("schema_up_to_date");
  if (result.release && name != N::kReleaseReport) return foreign("release");
  if (result.magento_version && name != N::kReleaseReport) return foreign("magento_version");

  switch (name) {
    case N::kHealthProbe:
      if (result.checks.empty()) return required("checks");
      if (Status s = ValidateChecks(result.checks); !s) {
        return Error::Invalid("result." + s.error().message, "result." + s.error().field);
      }
      break;
    case N::kMaintenanceEnable:
    case N::kMaintenanceDisable: {
      if (!result.maintenance) return required("maintenance");
      const bool expected = name == N::kMaintenanceEnable;
      if (*result.maintenance != expected) {
        return Error::Invalid(std::string("result.maintenance must be ") + (expected ? "true" : "false") + " for " + op,
                              "result.maintenance");
      }
      break;
    }
    case N::kCacheFlush: {
      if (result.flushed.empty()) return required("flushed");
      std::set<CacheType> seen;
      for (CacheType type : result.flushed) {
        if (!seen.insert(type).second) {
          return Error::Invalid("result.flushed names cache type '" + std::string(ToString(type)) + "' more than once",
                                "result.flushed");
        }
      }
      break;
    }
    case N::kIndexerStatus: {
      if (result.indexers.size() > kMaxIndexers) {
        return Error::Invalid("result.indexers must list at most 256 indexers", "result.indexers");
      }
      std::set<std::string_view> seen;
      for (std::size_t i = 0; i < result.indexers.size(); ++i) {
        const std::string field = Indexed("result.indexers", i) + ".id";
        const std::string& id = result.indexers[i].id;
        if (!IsMachineCode(id, kMaxIndexerIdLength)) {
          return Error::Invalid(field + " must be 1 to 64 characters of a-z, 0-9 and '_'", field);
        }
        if (!seen.insert(id).second) return Error::Invalid("indexer '" + id + "' is listed more than once", field);
      }
      break;
    }
    case N::kDbStatus:
      if (!result.schema_up_to_date) return required("schema_up_to_date");
      break;
    case N::kReleaseReport:
      if (result.release) {
        if (Status s = ValidateReleaseId(*result.release); !s) {
          return Error::Invalid("result." + s.error().message, "result.release");
        }
      }
      if (!result.magento_version) return required("magento_version");
      if (Status s = ValidateMagentoVersion(*result.magento_version); !s) {
        return Error::Invalid("result." + s.error().message, "result.magento_version");
      }
      break;
  }
  return Status::Ok();
}

const std::vector<std::string_view>& FailureCodes() {
  static const std::vector<std::string_view> kCodes = {
      "timeout",     "refused_not_allowed", "refused_unknown",  "exit_nonzero", "parse_error",
      "interrupted", "spawn_failed",        "output_too_large", "expired",      "agent_revoked",
  };
  return kCodes;
}

Status ValidateFailureCode(std::string_view code) {
  for (std::string_view known : FailureCodes()) {
    if (known == code) return Status::Ok();
  }
  std::string list;
  for (std::string_view known : FailureCodes()) {
    if (!list.empty()) list += ", ";
    list += known;
  }
  return Error::Invalid("code must be one of: " + list, "code");
}

// ---- State machine ---------------------------------------------------------------------

std::string_view ToString(OperationState state) {
  switch (state) {
    case OperationState::kQueued: return "queued";
    case OperationState::kDelivered: return "delivered";
    case OperationState::kSucceeded: return "succeeded";
    case OperationState::kFailed: return "failed";
    case OperationState::kExpired: return "expired";
  }
  return "queued";
}

std::optional<OperationState> ParseOperationState(std::string_view text) {
  for (OperationState state : {OperationState::kQueued, OperationState::kDelivered, OperationState::kSucceeded,
                               OperationState::kFailed, OperationState::kExpired}) {
    if (ToString(state) == text) return state;
  }
  return std::nullopt;
}

bool IsFinal(OperationState state) {
  return state == OperationState::kSucceeded || state == OperationState::kFailed || state == OperationState::kExpired;
}

std::string_view ToString(OperationEvent event) {
  switch (event) {
    case OperationEvent::kDeliver: return "deliver";
    case OperationEvent::kSucceed: return "succeed";
    case OperationEvent::kFail: return "fail";
    case OperationEvent::kExpire: return "expire";
  }
  return "deliver";
}

// The whole table. Any pair not listed is a conflict.
//   queued    --deliver--> delivered      delivered --deliver--> delivered (redelivery)
//   delivered --succeed--> succeeded      delivered --fail-->    failed
//   queued    --expire-->  expired        delivered --expire-->  expired
Result<OperationState> TransitionOperation(OperationState from, OperationEvent event) {
  using S = OperationState;
  using E = OperationEvent;
  switch (from) {
    case S::kQueued:
      if (event == E::kDeliver) return S::kDelivered;
      if (event == E::kExpire) return S::kExpired;
      break;
    case S::kDelivered:
      if (event == E::kDeliver) return S::kDelivered;
      if (event == E::kSucceed) return S::kSucceeded;
      if (event == E::kFail) return S::kFailed;
      if (event == E::kExpire) return S::kExpired;
      break;
    case S::kSucceeded:
    case S::kFailed:
    case S::kExpired: break;
  }
  return Error{ErrorCode::kConflict,
               "cannot " + std::string(ToString(event)) + " an operation in state " + std::string(ToString(from)),
               {}};
}

}  // namespace storeplane::core
