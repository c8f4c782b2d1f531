// The operation catalog (src/core/operation.h): names, specs, every operation's params and
// result schema accepted and refused, the check and pattern rules, failure codes, and the
// state machine against its full table.
#include "core/operation.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace storeplane::core {
namespace {

using N = OperationName;

void ExpectInvalid(const Status& status, const std::string& field) {
  ASSERT_FALSE(status.ok()) << "expected a refusal naming " << field;
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(status.error().field, field) << status.error().message;
}

// ---- Catalog ---------------------------------------------------------------------------

TEST(OperationCatalogTest, NamesRoundTripAndAreDistinct) {
  ASSERT_EQ(AllOperationNames().size(), 7u);
  std::set<std::string_view> seen;
  for (N name : AllOperationNames()) {
    EXPECT_TRUE(seen.insert(ToString(name)).second) << ToString(name);
    EXPECT_EQ(ParseOperationName(ToString(name)), name);
    EXPECT_EQ(SpecOf(name).name, name);
    EXPECT_FALSE(SpecOf(name).summary.empty());
    EXPECT_EQ(OperationAction(name), "operation.run." + std::string(ToString(name)));
  }
  EXPECT_EQ(ToString(N::kHealthProbe), "health.probe");
  EXPECT_EQ(ToString(N::kMaintenanceEnable), "maintenance.enable");
  EXPECT_EQ(ToString(N::kMaintenanceDisable), "maintenance.disable");
  EXPECT_EQ(ToString(N::kCacheFlush), "cache.flush");
  EXPECT_EQ(ToString(N::kIndexerStatus), "indexer.status");
  EXPECT_EQ(ToString(N::kDbStatus), "db.status");
  EXPECT_EQ(ToString(N::kReleaseReport), "release.report");
  EXPECT_EQ(OperationAction(N::kCacheFlush), "operation.run.cache.flush");
}

TEST(OperationCatalogTest, UnknownNamesAreNotParsed) {
  for (const char* text : {"", "cache", "cache.flush ", "Cache.Flush", "shell.exec", "cache.flush.all", "health"}) {
    EXPECT_FALSE(ParseOperationName(text).has_value()) << text;
  }
}

TEST(OperationCatalogTest, SpecsMatchTheDocumentedTable) {
  struct Expected {
    N name;
    bool changes_store;
    int timeout_s;
  };
  const Expected table[] = {
      {N::kHealthProbe, false, 30},   {N::kMaintenanceEnable, true, 120}, {N::kMaintenanceDisable, true, 120},
      {N::kCacheFlush, true, 300},    {N::kIndexerStatus, false, 60},     {N::kDbStatus, false, 120},
      {N::kReleaseReport, false, 30},
  };
  for (const Expected& e : table) {
    EXPECT_EQ(SpecOf(e.name).changes_store, e.changes_store) << ToString(e.name);
    EXPECT_EQ(SpecOf(e.name).default_timeout_s, e.timeout_s) << ToString(e.name);
  }
}

TEST(OperationCatalogTest, CacheTypesAreMagentosNames) {
  const std::vector<std::string_view> expected = {"config",
                                                  "layout",
                                                  "block_html",
                                                  "collections",
                                                  "reflection",
                                                  "db_ddl",
                                                  "compiled_config",
                                                  "eav",
                                                  "customer_notification",
                                                  "config_integration",
                                                  "config_integration_api",
                                                  "full_page",
                                                  "config_webservice",
                                                  "translate"};
  ASSERT_EQ(AllCacheTypes().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(ToString(AllCacheTypes()[i]), expected[i]);
    EXPECT_EQ(ParseCacheType(expected[i]), AllCacheTypes()[i]);
  }
  EXPECT_FALSE(ParseCacheType("fullpage").has_value());
  EXPECT_FALSE(ParseCacheType("FULL_PAGE").has_value());
  EXPECT_FALSE(ParseCacheType("").has_value());
}

// ---- Params ----------------------------------------------------------------------------

TEST(OperationParamsTest, EveryOperationAcceptsNoParams) {
  for (N name : AllOperationNames()) EXPECT_TRUE(ValidateParams(name, {}).ok()) << ToString(name);
}

TEST(OperationParamsTest, OnlyCacheFlushTakesCacheTypes) {
  const OperationParams params{{CacheType::kConfig, CacheType::kFullPage}};
  for (N name : AllOperationNames()) {
    if (name == N::kCacheFlush) {
      EXPECT_TRUE(ValidateParams(name, params).ok());
    } else {
      ExpectInvalid(ValidateParams(name, params), "params.types");
    }
  }
}

TEST(OperationParamsTest, CacheFlushAcceptsEveryTypeOnce) {
  EXPECT_TRUE(ValidateParams(N::kCacheFlush, OperationParams{AllCacheTypes()}).ok());
}

TEST(OperationParamsTest, CacheFlushRefusesDuplicates) {
  const OperationParams params{{CacheType::kConfig, CacheType::kLayout, CacheType::kConfig}};
  ExpectInvalid(ValidateParams(N::kCacheFlush, params), "params.types");
}

// ---- Checks and patterns ---------------------------------------------------------------

TEST(CheckTest, NamesAndStatusesRoundTrip) {
  const std::vector<std::string_view> names = {"storefront", "maintenance", "cron", "disk", "release", "isolation"};
  ASSERT_EQ(AllCheckNames().size(), names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(ToString(AllCheckNames()[i]), names[i]);
    EXPECT_EQ(ParseCheckName(names[i]), AllCheckNames()[i]);
  }
  EXPECT_FALSE(ParseCheckName("Disk").has_value());
  for (CheckStatus s : {CheckStatus::kPass, CheckStatus::kWarn, CheckStatus::kFail}) {
    EXPECT_EQ(ParseCheckStatus(ToString(s)), s);
  }
  EXPECT_EQ(ToString(CheckStatus::kWarn), "warn");
  EXPECT_FALSE(ParseCheckStatus("ok").has_value());
}

TEST(CheckTest, CodePattern) {
  for (const std::string& ok :
       {std::string("http_200"), std::string("disk_ok"), std::string("a"), std::string(48, 'z'), std::string("0_9")}) {
    EXPECT_TRUE(ValidateCheckCode(ok).ok()) << ok;
  }
  for (const std::string& bad : {std::string(""), std::string(49, 'a'), std::string("Disk_ok"), std::string("disk-ok"),
                                 std::string("disk ok"), std::string("disk.ok"), std::string("disk\nok")}) {
    ExpectInvalid(ValidateCheckCode(bad), "code");
  }
}

TEST(CheckTest, ChecksEachNameOnceWithValidCodes) {
  EXPECT_TRUE(ValidateChecks({}).ok());
  std::vector<CheckResult> all;
  for (CheckName name : AllCheckNames()) all.push_back({name, CheckStatus::kPass, "ok"});
  EXPECT_TRUE(ValidateChecks(all).ok());

  const std::vector<CheckResult> duplicate = {{CheckName::kDisk, CheckStatus::kPass, "disk_ok"},
                                              {CheckName::kCron, CheckStatus::kPass, "cron_fresh"},
                                              {CheckName::kDisk, CheckStatus::kFail, "disk_critical"}};
  ExpectInvalid(ValidateChecks(duplicate), "checks[2].name");

  const std::vector<CheckResult> bad_code = {{CheckName::kDisk, CheckStatus::kPass, "disk_ok"},
                                             {CheckName::kCron, CheckStatus::kWarn, "Cron is stale!"}};
  ExpectInvalid(ValidateChecks(bad_code), "checks[1].code");
}

TEST(PatternTest, ReleaseIds) {
  for (const std::string& ok : {std::string("r42"), std::string("2024.05.01-1"), std::string("v1.2.3+build.7"),
                                std::string("A_b"), std::string("7"), std::string(64, 'x')}) {
    EXPECT_TRUE(ValidateReleaseId(ok).ok()) << ok;
  }
  for (const std::string& bad : {std::string(""), std::string(65, 'x'), std::string("-r42"), std::string(".r42"),
                                 std::string("_r"), std::string("r 42"), std::string("r/42"), std::string("r42;rm")}) {
    ExpectInvalid(ValidateReleaseId(bad), "release");
  }
}

TEST(PatternTest, MagentoVersions) {
  for (const char* ok : {"2.4", "2.4.6", "2.4.6-p3", "2.4.6.1", "2.4-p1", "10.20.30.40-p12"}) {
    EXPECT_TRUE(ValidateMagentoVersion(ok).ok()) << ok;
  }
  for (const char* bad : {"", "2", "2.4.6.1.2", "2.4.6-", "2.4.6-p", "2.4.6-3", "2.4.6-p3-p4", "v2.4.6", "2..4", "2.4.",
                          ".2.4", "2.4.6 ", "2.4.x", "2.4.6-beta1", "2.4.6-P3"}) {
    ExpectInvalid(ValidateMagentoVersion(bad), "magento_version");
  }
}

TEST(FailureCodeTest, ClosedSet) {
  const std::vector<std::string_view> expected = {
      "timeout",     "refused_not_allowed", "refused_unknown",  "exit_nonzero", "parse_error",
      "interrupted", "spawn_failed",        "output_too_large", "expired",      "agent_revoked"};
  EXPECT_EQ(FailureCodes(), expected);
  for (std::string_view code : expected) EXPECT_TRUE(ValidateFailureCode(code).ok()) << code;
  for (const char* bad : {"", "Timeout", "timeout ", "killed", "segfault: core dumped"}) {
    ExpectInvalid(ValidateFailureCode(bad), "code");
  }
}

// ---- Results ---------------------------------------------------------------------------

OperationResult ValidResultOf(N name) {
  OperationResult r;
  switch (name) {
    case N::kHealthProbe: r.checks = {{CheckName::kDisk, CheckStatus::kPass, "disk_ok"}}; break;
    case N::kMaintenanceEnable: r.maintenance = true; break;
    case N::kMaintenanceDisable: r.maintenance = false; break;
    case N::kCacheFlush: r.flushed = {CacheType::kConfig}; break;
    case N::kIndexerStatus: r.indexers = {{"catalog_product_price", IndexerStatus::kReady}}; break;
    case N::kDbStatus: r.schema_up_to_date = true; break;
    case N::kReleaseReport:
      r.release = "r42";
      r.magento_version = "2.4.6-p3";
      break;
  }
  return r;
}

TEST(OperationResultTest, EachOperationAcceptsItsOwnSchema) {
  for (N name : AllOperationNames()) {
    const Status s = ValidateResult(name, ValidResultOf(name));
    EXPECT_TRUE(s.ok()) << ToString(name) << ": " << s.error().message;
  }
}

TEST(OperationResultTest, NoOperationAcceptsAnotherOperationsFields) {
  // Which field each operation's valid result sets, to name the refusal.
  const auto field_of = [](N name) -> std::string {
    switch (name) {
      case N::kHealthProbe: return "result.checks";
      case N::kMaintenanceEnable:
      case N::kMaintenanceDisable: return "result.maintenance";
      case N::kCacheFlush: return "result.flushed";
      case N::kIndexerStatus: return "result.indexers";
      case N::kDbStatus: return "result.schema_up_to_date";
      case N::kReleaseReport: return "result.release";
    }
    return "";
  };
  for (N name : AllOperationNames()) {
    for (N other : AllOperationNames()) {
      if (field_of(name) == field_of(other)) continue;
      OperationResult r = ValidResultOf(name);
      const OperationResult foreign = ValidResultOf(other);
      r.checks.insert(r.checks.end(), foreign.checks.begin(), foreign.checks.end());
      if (foreign.maintenance) r.maintenance = foreign.maintenance;
      r.flushed.insert(r.flushed.end(), foreign.flushed.begin(), foreign.flushed.end());
      r.indexers.insert(r.indexers.end(), foreign.indexers.begin(), foreign.indexers.end());
      if (foreign.schema_up_to_date) r.schema_up_to_date = foreign.schema_up_to_date;
      if (foreign.release) r.release = foreign.release;
      if (foreign.magento_version) r.magento_version = foreign.magento_version;
      ExpectInvalid(ValidateResult(name, r), field_of(other));
    }
  }
}

TEST(OperationResultTest, MagentoVersionAloneIsForeignOutsideReleaseReport) {
  OperationResult r = ValidResultOf(N::kDbStatus);
  r.magento_version = "2.4.6";
  ExpectInvalid(ValidateResult(N::kDbStatus, r), "result.magento_version");
}

TEST(OperationResultTest, RequiredFieldsAreRequired) {
  ExpectInvalid(ValidateResult(N::kHealthProbe, {}), "result.checks");
  ExpectInvalid(ValidateResult(N::kMaintenanceEnable, {}), "result.maintenance");
  ExpectInvalid(ValidateResult(N::kMaintenanceDisable, {}), "result.maintenance");
  ExpectInvalid(ValidateResult(N::kCacheFlush, {}), "result.flushed");
  ExpectInvalid(ValidateResult(N::kDbStatus, {}), "result.schema_up_to_date");
  ExpectInvalid(ValidateResult(N::kReleaseReport, {}), "result.magento_version");
  // No indexers is a valid (if odd) indexer.status result.
  EXPECT_TRUE(ValidateResult(N::kIndexerStatus, {}).ok());
}

TEST(OperationResultTest, HealthProbeChecksAreValidated) {
  OperationResult r;
  r.checks = {{CheckName::kDisk, CheckStatus::kPass, "disk_ok"}, {CheckName::kDisk, CheckStatus::kWarn, "disk_low"}};
  ExpectInvalid(ValidateResult(N::kHealthProbe, r), "result.checks[1].name");
  r.checks = {{CheckName::kCron, CheckStatus::kWarn, "stale cron"}};
  ExpectInvalid(ValidateResult(N::kHealthProbe, r), "result.checks[0].code");
  for (CheckName name : AllCheckNames()) r.checks.push_back({name, CheckStatus::kFail, "x"});
  r.checks.erase(r.checks.begin());
  EXPECT_TRUE(ValidateResult(N::kHealthProbe, r).ok());
}

TEST(OperationResultTest, MaintenanceMustMatchTheOperation) {
  OperationResult on;
  on.maintenance = true;
  OperationResult off;
  off.maintenance = false;
  EXPECT_TRUE(ValidateResult(N::kMaintenanceEnable, on).ok());
  EXPECT_TRUE(ValidateResult(N::kMaintenanceDisable, off).ok());
  ExpectInvalid(ValidateResult(N::kMaintenanceEnable, off), "result.maintenance");
  ExpectInvalid(ValidateResult(N::kMaintenanceDisable, on), "result.maintenance");
}

TEST(OperationResultTest, FlushedTypesAreDistinct) {
  OperationResult r;
  r.flushed = AllCacheTypes();
  EXPECT_TRUE(ValidateResult(N::kCacheFlush, r).ok());
  r.flushed.push_back(CacheType::kEav);
  ExpectInvalid(ValidateResult(N::kCacheFlush, r), "result.flushed");
}

TEST(OperationResultTest, IndexerIdsFollowThePatternAndTheLimit) {
  OperationResult r;
  r.indexers = {{"catalog_product_price", IndexerStatus::kReady},
                {"inventory", IndexerStatus::kReindexRequired},
                {std::string(64, 'a'), IndexerStatus::kProcessing},
                {"x9_", IndexerStatus::kSuspended}};
  EXPECT_TRUE(ValidateResult(N::kIndexerStatus, r).ok());

  for (const std::string& bad : {std::string(""), std::string(65, 'a'), std::string("Catalog"),
                                 std::string("catalog-price"), std::string("catalog price"), std::string("Ä")}) {
    OperationResult b;
    b.indexers = {{"design_config_grid", IndexerStatus::kReady}, {bad, IndexerStatus::kReady}};
    ExpectInvalid(ValidateResult(N::kIndexerStatus, b), "result.indexers[1].id");
  }

  OperationResult duplicate;
  duplicate.indexers = {{"inventory", IndexerStatus::kReady}, {"inventory", IndexerStatus::kProcessing}};
  ExpectInvalid(ValidateResult(N::kIndexerStatus, duplicate), "result.indexers[1].id");

  OperationResult many;
  for (int i = 0; i < 256; ++i) many.indexers.push_back({"ix_" + std::to_string(i), IndexerStatus::kReady});
  EXPECT_TRUE(ValidateResult(N::kIndexerStatus, many).ok());
  many.indexers.push_back({"ix_256", IndexerStatus::kReady});
  ExpectInvalid(ValidateResult(N::kIndexerStatus, many), "result.indexers");
}

TEST(OperationResultTest, IndexerStatusesRoundTrip) {
  for (IndexerStatus s : {IndexerStatus::kReady, IndexerStatus::kReindexRequired, IndexerStatus::kProcessing,
                          IndexerStatus::kSuspended}) {
    EXPECT_EQ(ParseIndexerStatus(ToString(s)), s);
  }
  EXPECT_EQ(ToString(IndexerStatus::kReindexRequired), "reindex_required");
  EXPECT_FALSE(ParseIndexerStatus("valid").has_value());
}

TEST(OperationResultTest, ReleaseReport) {
  OperationResult r;
  r.magento_version = "2.4.7";
  EXPECT_TRUE(ValidateResult(N::kReleaseReport, r).ok()) << "release may be absent without a marker";
  r.release = "bad release";
  ExpectInvalid(ValidateResult(N::kReleaseReport, r), "result.release");
  r.release = "r1";
  r.magento_version = "2.4.7 (Community)";
  ExpectInvalid(ValidateResult(N::kReleaseReport, r), "result.magento_version");
  r.magento_version.reset();
  ExpectInvalid(ValidateResult(N::kReleaseReport, r), "result.magento_version");
}

// ---- State machine ---------------------------------------------------------------------

using S = OperationState;
using E = OperationEvent;
constexpr std::optional<S> X = std::nullopt;

TEST(OperationStateTest, NamesRoundTrip) {
  const S states[] = {S::kQueued, S::kDelivered, S::kSucceeded, S::kFailed, S::kExpired};
  const char* names[] = {"queued", "delivered", "succeeded", "failed", "expired"};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ToString(states[i]), names[i]);
    EXPECT_EQ(ParseOperationState(names[i]), states[i]);
  }
  EXPECT_FALSE(ParseOperationState("running").has_value());
  EXPECT_EQ(ToString(E::kDeliver), "deliver");
  EXPECT_EQ(ToString(E::kSucceed), "succeed");
  EXPECT_EQ(ToString(E::kFail), "fail");
  EXPECT_EQ(ToString(E::kExpire), "expire");
}

TEST(OperationStateTest, FinalStates) {
  EXPECT_FALSE(IsFinal(S::kQueued));
  EXPECT_FALSE(IsFinal(S::kDelivered));
  EXPECT_TRUE(IsFinal(S::kSucceeded));
  EXPECT_TRUE(IsFinal(S::kFailed));
  EXPECT_TRUE(IsFinal(S::kExpired));
}

TEST(OperationStateTest, EveryPairMatchesTheTable) {
  struct Row {
    S from;
    std::optional<S> next[4];  // deliver, succeed, fail, expire
  };
  const Row table[] = {
      // clang-format off
      {S::kQueued,    {S::kDelivered, X,             X,          S::kExpired}},
      {S::kDelivered, {S::kDelivered, S::kSucceeded, S::kFailed, S::kExpired}},
      {S::kSucceeded, {X,             X,             X,          X}},
      {S::kFailed,    {X,             X,             X,          X}},
      {S::kExpired,   {X,             X,             X,          X}},
      // clang-format on
  };
  const E events[4] = {E::kDeliver, E::kSucceed, E::kFail, E::kExpire};
  int legal = 0;
  for (const Row& row : table) {
    for (std::size_t j = 0; j < 4; ++j) {
      const std::string pair = std::string(ToString(row.from)) + " + " + std::string(ToString(events[j]));
      const Result<S> got = TransitionOperation(row.from, events[j]);
      if (row.next[j]) {
        ++legal;
        ASSERT_TRUE(got.ok()) << pair << ": " << got.error().message;
        EXPECT_EQ(*got, *row.next[j]) << pair;
      } else {
        ASSERT_FALSE(got.ok()) << pair << " should be a conflict, got " << ToString(*got);
        EXPECT_EQ(got.error().code, ErrorCode::kConflict) << pair;
        EXPECT_EQ(got.error().message, "cannot " + std::string(ToString(events[j])) + " an operation in state " +
                                           std::string(ToString(row.from)));
      }
    }
  }
  EXPECT_EQ(legal, 6);
}

}  // namespace
}  // namespace storeplane::core
