// The Buildbot adapter (REST API v2, as in Buildbot 3.7): forces a build through a force
// scheduler's JSON-RPC "force" control, with the run's facts as build properties, and follows
// the buildset to its build request and build.
//
// Config: base_url (the master's web root, e.g. http://127.0.0.1:8010), settings.scheduler
// (the ForceScheduler's name), settings.builder (the builder's name), token_file or
// token_env (optional: sent as Authorization: Bearer, for a master behind a proxy that wants
// one). The master's config must have a ForceScheduler named settings.scheduler that lists
// settings.builder in builderNames and declares seven string parameters (properties) named
// storeplane_correlation_id, storeplane_store_id, storeplane_environment,
// storeplane_isolation_mode, storeplane_kind, storeplane_release, storeplane_callback_url,
// e.g. util.StringParameter(name="storeplane_correlation_id") (a force scheduler keeps only
// parameters it declares). Its reasonString must keep "%(reason)s" (the default does), since
// the search below reads the buildset's reason. Anonymous users (or storeplane's identity)
// need the "force" permission when www authz is configured.
//
// Before the first trigger (then cached): GET {base}/api/v2/forceschedulers/{scheduler}
// (404 = no such scheduler) must list the builder in "builder_names" and declare the seven
// storeplane_* parameters in "all_fields" (nested fields included), else kInvalidArgument
// naming what is missing; then GET {base}/api/v2/builders?name={builder} gives the builder id.
// Trigger: POST {base}/api/v2/forceschedulers/{scheduler}, Content-Type: application/json,
//   {"id": 1, "jsonrpc": "2.0", "method": "force", "params": {"builderid": <id>,
//   "reason": "storeplane <correlation id>", "owner": "storeplane",
//   "storeplane_correlation_id": ..., ... the seven facts}}.
//   200 {"jsonrpc": "2.0", "id": 1, "result": [<bsid>, {"<builderid>": <brid>}]} ->
//   external id "buildset:<bsid>", external url {base}/#/buildrequests/<brid>. JSON-RPC
//   errors come as 400 {"error": {"code", "message"}} (e.g. a parameter failed validation).
//
// Find: "buildset:<n>": GET {base}/api/v2/buildrequests?buildsetid=<n> (the request for the
// builder), then GET {base}/api/v2/builds?buildrequestid=<brid> (its newest build). A complete
// build request is final by its results; otherwise: no build yet -> queued, a build not
// complete -> running, a complete build -> its results (RETRY -> queued again). Results
// codes: 0 SUCCESS, 1 WARNINGS -> succeeded; 6 CANCELLED -> cancelled; 2 FAILURE, 3 SKIPPED,
// 4 EXCEPTION (and anything else) -> failed. External url {base}/#/builders/<builderid>/
// builds/<number> once a build exists.
// Without an id (or an unknown buildset): GET {base}/api/v2/buildsets?order=-bsid&limit=30
// and take the newest buildset whose reason contains the correlation id as a whole word
// (the REST API does not return buildset properties, but the forced reason is
// "A build was forced by '<owner>': storeplane <correlation id>"). Only the 30 newest
// buildsets are searched.
#pragma once

#include <memory>

#include "cicd/adapter_support.h"
#include "cicd/provider.h"
#include "core/result.h"

namespace storeplane::cicd {

Result<std::unique_ptr<Provider>> MakeBuildbotProvider(AdapterBasics basics, const ProviderConfig& config);

}  // namespace storeplane::cicd
