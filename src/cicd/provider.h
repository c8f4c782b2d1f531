// CI/CD providers behind one interface: each adapter triggers a pipeline with exactly the
// run's facts (store id, environment, isolation mode, kind, release, correlation id and the
// callback URL) and nothing else about the store, and finds a run again by its correlation
// id, for polling and for asking "does this run exist already?" before sending a trigger
// again after a crash. Adapters are blocking (libcurl, with a timeout on every call) and
// run on worker threads, never on an I/O thread. Credentials come from files or the
// environment, never from the database, and are never logged.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace storeplane::cicd {

// What a trigger carries: nothing else about the store ever leaves.
struct TriggerRequest {
  std::string correlation_id;  // "run_<hex>": the run's id, unique, in every provider's inputs
  std::string store_id;
  std::string environment;
  std::string isolation_mode;  // "shared" | "dedicated" | "isolated"
  std::string kind;            // "provision" | "deploy" | "rollback" | "decommission" | "isolation_migration"
  std::string release;         // empty for kinds without one
  std::string callback_url;    // where the pipeline reports: <public_url>/hooks/cicd/<provider name>
};

struct TriggerResult {
  std::string external_id;   // the provider's id when the answer names it (GitLab, Jenkins queue item,
                             // Buildbot buildset); empty when it must be found later (GitHub)
  std::string external_url;  // a link for operators, when known
};

enum class ProviderRunStatus {
  kNotFound,  // no run with this correlation id (yet)
  kQueued,
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
};
std::string_view ToString(ProviderRunStatus status);

struct RunStatus {
  ProviderRunStatus status = ProviderRunStatus::kNotFound;
  std::string external_id;  // as found (may be newly learnt, e.g. GitHub's run id)
  std::string external_url;
};

class Provider {
 public:
  virtual ~Provider() = default;
  // The configured name, used in /hooks/cicd/{name} and in the config ("webhook",
  // "github", "gitlab", "jenkins", "buildbot", or any name an operator gives an instance).
  virtual const std::string& name() const = 0;
  virtual std::string_view type() const = 0;  // "webhook" | "github" | "gitlab" | "jenkins" | "buildbot"

  // Sends the trigger. Errors: kUnavailable (transport failure, timeout, 5xx, 429: safe
  // to retry later), kPermissionDenied (401/403), kInvalidArgument (other 4xx: retrying
  // will not help). The message never contains a credential.
  virtual Result<TriggerResult> Trigger(const TriggerRequest& request) = 0;

  // Finds the run of `correlation_id` (using `external_id` when known, which is cheaper).
  // kNotFound status when the provider has no such run. Errors as for Trigger.
  virtual Result<RunStatus> Find(const std::string& correlation_id, const std::string& external_id) = 0;
};

// One provider instance from the configuration, e.g.
//   cicd:
//     providers:
//       gh-prod: {type: github, base_url: https://api.github.com, token_file: /etc/storeplane/gh.token,
//                 settings: {owner: acme, repo: stores, workflow: deploy.yml, ref: main}}
//       bb:      {type: buildbot, base_url: http://127.0.0.1:8010, settings: {scheduler: force-store, builder: store}}
//       hook:    {type: webhook, base_url: https://ci.example/storeplane, secret_file: /etc/storeplane/hook.secret}
struct ProviderConfig {
  std::string name;
  std::string type;
  std::string base_url;     // the provider's API root (or the webhook's URL)
  std::string token_file;   // bearer/API token (github, gitlab, jenkins "user:token", buildbot optional)
  std::string token_env;    // alternatively the name of an environment variable holding it
  std::string secret_file;  // webhook: the HMAC secret for signing triggers
  std::string secret_env;
  std::map<std::string, std::string> settings;  // per type, documented in docs/CICD.md
  std::string ca_file;                          // PEM bundle to trust; empty = system default
  long timeout_ms = 10'000;
};

// Builds the adapter, reading its credentials now. kInvalidArgument naming the missing or
// wrong setting; a credential file that cannot be read is named, its content never shown.
Result<std::unique_ptr<Provider>> MakeProvider(const ProviderConfig& config);

}  // namespace storeplane::cicd
