// The store actions that can wait for approval, decoded once and executed either at once
// or, for a change request, when its last approval arrives: decode a request body, build
// the typed effect, and carry out an approved change exactly once (its status flips from
// pending to executed in the same transaction as the effect and the audit records).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/authority.h"
#include "core/result.h"
#include "core/store.h"
#include "db/repository.h"
#include "server/config.h"

namespace storeplane::server {

// A registration body -> the validated Store to insert (state registered, version 1).
Result<core::Store> DecodeRegistration(std::string_view body, const core::EnvironmentSet& environments,
                                       std::int64_t now_ms);
// A PATCH body -> the validated patch.
Result<core::StorePatch> DecodeStorePatch(std::string_view body);

core::AuthzTarget TargetOf(const core::Store& store);

// The body a store.label change request keeps: the patch and the version it was made against.
std::string LabelChangeBody(std::string_view patch_body, std::int64_t expected_version);

// A new pending change request for `action` on `store`.
db::ChangeRequest NewChange(std::string_view action, const core::Store& store, std::string requester,
                            std::string request_body, const core::ApprovalRule& rule, std::int64_t now_ms);

// The effects that carry out an approved change now, validating its request again against
// the current state (a store registered meanwhile, a version that moved on, a run started
// meanwhile). A lifecycle change becomes a pipeline run with its outbox entry.
// A change for a pipeline run is also checked against the policy's deploy windows at
// `now_ms` (an approval that lands outside the window does not run), unless it is a
// break-glass change (approval rule "break-glass"), which runs whatever the windows say.
Result<std::vector<db::Effect>> EffectsForChange(const db::ChangeRequest& change, db::Repository& repo,
                                                 const Config& config, const core::Policy& policy, std::int64_t now_ms);

// The break-glass reason a change's request carries, when it is a break-glass change.
std::optional<std::string> BreakGlassReasonOf(const db::ChangeRequest& change);

}  // namespace storeplane::server
