// Requests for pipeline runs (provision, deploy, rollback, decommission, isolation
// migration): the request body decoded, then planned against the store as it is now into
// the effects that record the run, its outbox entry and the store's lifecycle change, all
// in one transaction. Used when an operator asks and when an approved change executes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
};

// The catalog action that requests `kind` (store.provision, deploy.request, ...).
std::string_view ActionOfRunKind(core::RunKind kind);
std::optional<core::RunKind> RunKindOfAction(std::string_view action);

// Strict decoding: provision/decommission take {} (or no body), deploy {"release"},
// rollback {"release"?}, isolation_migration {"isolation_mode"}.
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
