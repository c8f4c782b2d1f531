// Rollouts at the API's edge: the request body as a core::RolloutSpec, the stored records as
// core values and back, and the rollout as the API and the event stream show it. Used by the
// rollouts handler, the change executor (an approved production rollout) and the orchestrator.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/result.h"
#include "core/rollout.h"
#include "core/store.h"
#include "db/repository.h"

namespace storeplane::server {

// A POST /v1/rollouts body -> a validated spec; kInvalidArgument naming the field.
Result<core::RolloutSpec> DecodeRolloutSpec(std::string_view body, const core::EnvironmentSet& environments);
boost::json::object RolloutSpecJson(const core::RolloutSpec& spec);

// A new rollout for `spec`: its stores selected from the repository (every page), the plan,
// the record (id "rol_" + hex, state pending, version 1) and one waiting target per store.
// kInvalidArgument ("selector") when no store matches.
struct NewRollout {
  core::RolloutPlan plan;
  std::vector<core::Store> stores;  // the planned stores, in plan order
  db::RolloutRecord record;
  std::vector<db::RolloutTargetRecord> targets;
};
Result<NewRollout> PrepareRollout(const core::RolloutSpec& spec, db::Repository& repo, std::string created_by,
                                  std::string request_id, std::int64_t now_ms);

// The stored records as core values (kInternal when a stored text does not parse).
Result<core::RolloutSpec> SpecOf(const db::RolloutRecord& record);
Result<core::RolloutPlan> PlanOf(const db::RolloutRecord& record);
Result<core::RolloutProgress> ProgressOf(const db::RolloutRecord& record,
                                         const std::vector<db::RolloutTargetRecord>& targets);
// A target's stored row from its progress (position = its index).
db::RolloutTargetRecord TargetRecordOf(const std::string& rollout_id, std::size_t position,
                                       const core::TargetProgress& target, std::int64_t now_ms);
// The progress's fields on the record (state, wave, ...; counts_json from the targets);
// version and times are left to the caller.
void StoreProgress(const core::RolloutProgress& progress, const core::RolloutPlan& plan, db::RolloutRecord& record);

// Why a rollout is not moving now, for the API: {"reason": "window_closed"|"provider_pacing"|
// "approval"|"pause", "until": time|null, ...}; null when it is not waiting.
struct RolloutWait {
  std::string reason;
  std::optional<std::int64_t> until_ms;
};

// The rollout as GET /v1/rollouts/{id} and the events show it (see docs/openapi.yaml).
boost::json::object RolloutJson(const db::RolloutRecord& record, const std::optional<RolloutWait>& waiting = {});
boost::json::object RolloutTargetJson(const db::RolloutTargetRecord& target);

}  // namespace storeplane::server
