// The GitHub Actions adapter: dispatches a workflow with the run's facts as inputs and finds
// the workflow run again by its title, which carries the correlation id.
//
// Config: base_url (https://api.github.com, or https://<host>/api/v3 for GitHub Enterprise
// Server), token_file or token_env (required: a token allowed to write Actions on the repo),
// settings.owner, settings.repo, settings.workflow (file name such as deploy.yml, or its
// numeric id), settings.ref (the branch or tag the workflow runs on).
//
// Trigger: POST {base}/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches with
//   Authorization: Bearer <token>, Accept: application/vnd.github+json,
//   X-GitHub-Api-Version: 2022-11-28, User-Agent: storeplane and the JSON body
//   {"ref": <ref>, "inputs": {"correlation_id", "store_id", "environment", "isolation_mode",
//   "kind", "release", "callback_url"}} (all strings). 204 = accepted; the answer names no run,
//   so the external id stays empty until Find learns it (a 200 naming "workflow_run_id" is
//   taken as the id).
//
// The workflow must declare those seven inputs under `on: workflow_dispatch: inputs:` and
// must put the correlation id in its run name, which is how a run is found again:
//     run-name: "storeplane ${{ inputs.kind }} ${{ inputs.store_id }} ${{ inputs.correlation_id }}"
//
// Find: with an external id, GET {base}/repos/{owner}/{repo}/actions/runs/{id}; without one
// (or when that run is gone), GET .../actions/workflows/{workflow}/runs?event=workflow_dispatch
// &per_page=50 and take the newest run whose display_title (or, lacking one, name) contains the
// correlation id as a whole word. Only the 50 newest dispatched runs are searched.
// Status mapping: queued, waiting, requested, pending -> queued; in_progress -> running;
// completed: conclusion success -> succeeded, cancelled -> cancelled, everything else
// (failure, timed_out, action_required, startup_failure, stale, skipped, neutral, none) ->
// failed, since none of those deployed what was asked; any other, unfinished status -> running.
#pragma once

#include <memory>

#include "cicd/adapter_support.h"
#include "cicd/provider.h"
#include "core/result.h"

namespace storeplane::cicd {

Result<std::unique_ptr<Provider>> MakeGithubProvider(AdapterBasics basics, const ProviderConfig& config);

}  // namespace storeplane::cicd
