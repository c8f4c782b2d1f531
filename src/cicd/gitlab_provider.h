// The GitLab CI adapter: creates a pipeline with a pipeline trigger token, the run's facts as
// STOREPLANE_* variables, and reads pipelines (and their variables) with an optional API token.
//
// Config: base_url (https://gitlab.example, the instance root without /api/v4), token_file or
// token_env (required: the project's pipeline trigger token), settings.project (numeric id or
// the path "group/project"; a path is URL-encoded unless it already contains '%'),
// settings.ref (branch or tag), settings.api_token_file or settings.api_token_env (optional:
// a token with read_api on the project, sent as PRIVATE-TOKEN when reading; without one,
// reads are anonymous, which works for public projects only).
//
// Trigger: POST {base}/api/v4/projects/{project}/trigger/pipeline, a form
//   (application/x-www-form-urlencoded) of token, ref, variables[STOREPLANE_CORRELATION_ID],
//   variables[STOREPLANE_STORE_ID], variables[STOREPLANE_ENVIRONMENT],
//   variables[STOREPLANE_ISOLATION_MODE], variables[STOREPLANE_KIND],
//   variables[STOREPLANE_RELEASE], variables[STOREPLANE_CALLBACK_URL]. 201 {"id", "web_url",
//   "status", ...}: external id = the pipeline id, external url = web_url.
//
// Find: with an external id, GET {base}/api/v4/projects/{project}/pipelines/{id}; without one
// (or when that pipeline is gone), GET .../pipelines?per_page=20&order_by=id&sort=desc
// &source=trigger and, newest first, GET .../pipelines/{id}/variables until one has
// STOREPLANE_CORRELATION_ID = the correlation id. Only the 20 newest triggered pipelines are
// searched. Status mapping: created, waiting_for_resource, preparing, pending, scheduled,
// manual -> queued; running -> running; success -> succeeded; canceled -> cancelled; failed,
// skipped -> failed; anything else (such as canceling) -> running, as it has not ended.
#pragma once

#include <memory>

#include "cicd/adapter_support.h"
#include "cicd/provider.h"
#include "core/result.h"

namespace storeplane::cicd {

Result<std::unique_ptr<Provider>> MakeGitlabProvider(AdapterBasics basics, const ProviderConfig& config);

}  // namespace storeplane::cicd
