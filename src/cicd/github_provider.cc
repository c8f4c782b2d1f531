#include "cicd/github_provider.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <utility>

namespace storeplane::cicd {
namespace {

ProviderRunStatus MapRun(std::string_view status, std::string_view conclusion) {
  if (status == "completed") {
    if (conclusion == "success") return ProviderRunStatus::kSucceeded;
    if (conclusion == "cancelled") return ProviderRunStatus::kCancelled;
    return ProviderRunStatus::kFailed;
  }
  if (status == "queued" || status == "waiting" || status == "requested" || status == "pending") {
    return ProviderRunStatus::kQueued;
  }
  return ProviderRunStatus::kRunning;
}

class GithubProvider final : public HttpAdapter {
 public:
  GithubProvider(AdapterBasics basics, std::string token, const std::map<std::string, std::string>& settings)
      : HttpAdapter(std::move(basics), {token}),
        token_(std::move(token)),
        ref_(Setting(settings, "ref")),
        workflow_(Setting(settings, "workflow")) {
    repo_url_ = base_url() + "/repos/" + PercentEncode(Setting(settings, "owner")) + "/" +
                PercentEncode(Setting(settings, "repo"));
    workflow_url_ = repo_url_ + "/actions/workflows/" + PercentEncode(workflow_);
  }

  Result<TriggerResult> Trigger(const TriggerRequest& request) override {
    if (!IsValidCorrelationId(request.correlation_id)) return Invalid("the correlation id is malformed");
    boost::json::object inputs;
    inputs["correlation_id"] = request.correlation_id;
    inputs["store_id"] = request.store_id;
    inputs["environment"] = request.environment;
    inputs["isolation_mode"] = request.isolation_mode;
    inputs["kind"] = request.kind;
    inputs["release"] = request.release;
    inputs["callback_url"] = request.callback_url;
    boost::json::object body;
    body["ref"] = ref_;
    body["inputs"] = std::move(inputs);

    HttpCall call = Call("POST", workflow_url_ + "/dispatches");
    call.headers.emplace_back("Content-Type", "application/json");
    call.body = boost::json::serialize(body);

    const std::string what = "dispatching workflow " + workflow_;
    auto answer = Send(what, call);
    if (!answer.ok()) return answer.error();
    return Accepted(what, *answer, "workflow_run_id", "html_url");
  }

  Result<RunStatus> Find(const std::string& correlation_id, const std::string& external_id) override {
    if (!IsValidCorrelationId(correlation_id)) return Invalid("the correlation id is malformed");
    if (!external_id.empty()) {
      if (!IsDecimalId(external_id)) return Invalid("the external id is not a workflow run id");
      const std::string what = "reading workflow run " + external_id;
      auto answer = Send(what, Call("GET", repo_url_ + "/actions/runs/" + external_id));
      if (!answer.ok()) return answer.error();
      if (answer->status == 200) {
        auto json = ParseJson(answer->body);
        if (!json || !json->is_object()) return Malformed(what);
        return StatusOf(*json);
      }
      if (answer->status != 404) return Refused(what, *answer);
      // The run is gone (or the id was wrong): look for the correlation id instead.
    }
    const std::string what = "listing the runs of workflow " + workflow_;
    auto answer = Send(what, Call("GET", workflow_url_ + "/runs?event=workflow_dispatch&per_page=50"));
    if (!answer.ok()) return answer.error();
    if (answer->status != 200) return Refused(what, *answer);
    auto json = ParseJson(answer->body);
    const auto* runs = Field(json ? &*json : nullptr, "workflow_runs");
    if (runs == nullptr || !runs->is_array()) return Malformed(what);
    for (const auto& run : runs->get_array()) {
      std::string title = Text(Field(&run, "display_title"));
      if (title.empty()) title = Text(Field(&run, "name"));
      if (ContainsToken(title, correlation_id)) return StatusOf(run);
    }
    return RunStatus{};
  }

 private:
  HttpCall Call(std::string method, std::string url) const {
    HttpCall call;
    call.method = std::move(method);
    call.url = std::move(url);
    call.headers = {{"Authorization", "Bearer " + token_},
                    {"Accept", "application/vnd.github+json"},
                    {"X-GitHub-Api-Version", "2022-11-28"},
                    {"User-Agent", "storeplane"}};
    return call;
  }

  static RunStatus StatusOf(const boost::json::value& run) {
    RunStatus found;
    found.status = MapRun(Text(Field(&run, "status")), Text(Field(&run, "conclusion")));
    found.external_id = Text(Field(&run, "id"));
    found.external_url = Text(Field(&run, "html_url"));
    return found;
  }

  std::string token_;
  std::string ref_;
  std::string workflow_;
  std::string repo_url_;
  std::string workflow_url_;
};

}  // namespace

Result<std::unique_ptr<Provider>> MakeGithubProvider(AdapterBasics basics, const ProviderConfig& config) {
  SP_RETURN_IF_ERROR(CheckSettings(config.settings, "github", {"owner", "repo", "workflow", "ref"}, {}));
  if (!config.secret_file.empty() || !config.secret_env.empty()) {
    return Error::Invalid("github providers take token_file or token_env, not a secret", "secret_file");
  }
  auto token = ReadCredential("token", config.token_file, config.token_env);
  if (!token.ok()) return token.error();
  if (token->empty()) return Error::Invalid("github providers need token_file or token_env", "token_file");
  return std::unique_ptr<Provider>(
      std::make_unique<GithubProvider>(std::move(basics), std::move(*token), config.settings));
}

}  // namespace storeplane::cicd
