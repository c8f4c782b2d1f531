// The Jenkins adapter: starts a parameterized job with buildWithParameters and follows its
// queue item to the build; without an id, finds the build (or queue item) by its
// STOREPLANE_CORRELATION_ID parameter.
//
// Config: base_url (the Jenkins root, e.g. https://ci.example/jenkins), token_file or
// token_env (required: "user:apitoken", sent as HTTP basic auth; an API token needs no CSRF
// crumb), settings.job (the job's full name; folders as "folder/sub/job" become
// /job/folder/job/sub/job/job). The job must declare seven string parameters:
// STOREPLANE_CORRELATION_ID, STOREPLANE_STORE_ID, STOREPLANE_ENVIRONMENT,
// STOREPLANE_ISOLATION_MODE, STOREPLANE_KIND, STOREPLANE_RELEASE, STOREPLANE_CALLBACK_URL
// (Jenkins drops parameters a job does not declare).
//
// Trigger: POST {base}/job/{job}/buildWithParameters with those parameters as a form
//   (application/x-www-form-urlencoded) and Authorization: Basic. 201 with
//   Location: {base}/queue/item/{n}/ -> external id "queue:{n}", external url = the job page.
//
// Find: "queue:{n}": GET {base}/queue/item/{n}/api/json -> cancelled true = cancelled; an
// "executable" {"number"} = the build started: external id becomes "build:{number}" and the
// build is read; otherwise queued. "build:{n}": GET {base}/job/{job}/{n}/api/json -> building
// true = running; result SUCCESS = succeeded, ABORTED = cancelled, FAILURE, UNSTABLE,
// NOT_BUILT (or anything else) = failed, no result yet = running. Jenkins forgets queue items
// minutes after they leave the queue: a 404 for a known id falls back to the search.
// Without an id: GET {base}/queue/api/json?tree=items[id,cancelled,actions[parameters[name,
// value]]] (a match = queued as "queue:{id}"), then GET {base}/job/{job}/api/json?tree=
// builds[number,result,building,url,actions[parameters[name,value]]]{0,50} (the 50 newest
// builds), matching the STOREPLANE_CORRELATION_ID parameter.
#pragma once

#include <memory>

#include "cicd/adapter_support.h"
#include "cicd/provider.h"
#include "core/result.h"

namespace storeplane::cicd {

Result<std::unique_ptr<Provider>> MakeJenkinsProvider(AdapterBasics basics, const ProviderConfig& config);

}  // namespace storeplane::cicd
