// Requests for pipeline runs (provision, deploy, rollback, decommission, isolation
// migration): the request body decoded, then planned against the store as it is now into
// the effects that record the run, its outbox entry and the store's lifecycle change, all
// in one transaction. Used when an operator asks and when an approved change executes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/authority.h"
#include "core/deploy_window.h"
#include "core/pipeline_run.h"
#include "core/result.h"
#include "core/store.h"
#include "db/repository.h"
#include "server/config.h"

namespace storeplane::server {

struct RunRequest {
  core::RunKind kind = core::RunKind::kDeploy;
  std::optional<std::string> release;                   // deploy (required), rollback (optional target)
  std::optional<core::IsolationMode> target_isolation;  // isolation_migration
  // "break_glass": {"reason": ...}: asks to run outside the deploy windows once approved.
  std::optional<std::string> break_glass_reason;
};

// A break-glass reason: 10..500 bytes of printable text, no word that looks like a secret.
Status ValidateBreakGlassReason(std::string_view reason);

// The 409 for a request refused by the deploy windows: names the window(s) and the next
// opening (RFC 3339), or says that none is within 366 days.
Error WindowClosedError(const core::WindowDecision& decision, std::string_view action, std::string_view environment);

// The approval rule a break-glass change waits for: the policy's break_glass rule, with the
// larger count when a normal approval rule also covers the request. kConflict when the
// policy has no usable break-glass approver role (break-glass is then unavailable).
Result<core::ApprovalRule> BreakGlassRule(const core::Policy& policy, const core::ApprovalRule* normal);

// The catalog action that requests `kind` (store.provision, deploy.request, ...).
std::string_view ActionOfRunKind(core::RunKind kind);
std::optional<core::RunKind> RunKindOfAction(std::string_view action);

// Strict decoding: provision/decommission take {} (or no body), deploy {"release"},
// rollback {"release"?}, isolation_migration {"isolation_mode"}; each may add
// "break_glass": {"reason": "..."}.
Result<RunRequest> DecodeRunRequest(core::RunKind kind, std::string_view body);

// The provider the configuration routes `kind` in `environment` to: the first matching
// route. kConflict when none does.
Result<std::string> RouteRun(const CicdConfig& config, const std::string& environment, core::RunKind kind);

struct RunPlan {
  db::PipelineRunRecord run;
  std::vector<db::Effect> effects;  // InsertRunEffect, then the store's update if any
};

struct RunPlanInput {
  const RunRequest* request = nullptr;
  const core::Store* store = nullptr;
  bool isolation_mismatch = false;
  std::string requested_by;
  std::string request_id;
  std::string reason;
  std::int64_t now_ms = 0;
};
// Checks the request against the store and its active runs (core::CheckRunRequest) and
// builds the effects. The database still refuses a second active run (kConflict) when two
// requests race.
Result<RunPlan> PlanRun(const RunPlanInput& input, const CicdConfig& config, db::Repository& repo);

}  // namespace storeplane::server
