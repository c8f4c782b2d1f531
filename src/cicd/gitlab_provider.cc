#include "cicd/gitlab_provider.h"

#include <boost/json/array.hpp>
#include <utility>

namespace storeplane::cicd {
namespace {

ProviderRunStatus MapPipeline(std::string_view status) {
  if (status == "created" || status == "waiting_for_resource" || status == "preparing" || status == "pending" ||
      status == "scheduled" || status == "manual") {
    return ProviderRunStatus::kQueued;
  }
  if (status == "success") return ProviderRunStatus::kSucceeded;
  if (status == "canceled") return ProviderRunStatus::kCancelled;
  if (status == "failed" || status == "skipped") return ProviderRunStatus::kFailed;
  return ProviderRunStatus::kRunning;
}

RunStatus StatusOf(const boost::json::value& pipeline) {
  RunStatus found;
  found.status = MapPipeline(Text(Field(&pipeline, "status")));
  found.external_id = Text(Field(&pipeline, "id"));
  found.external_url = Text(Field(&pipeline, "web_url"));
  return found;
}

class GitlabProvider final : public HttpAdapter {
 public:
  GitlabProvider(AdapterBasics basics, std::string trigger_token, std::string api_token, std::string project,
                 std::string ref)
      : HttpAdapter(std::move(basics), {trigger_token, api_token}),
        trigger_token_(std::move(trigger_token)),
        api_token_(std::move(api_token)),
        ref_(std::move(ref)) {
    const std::string encoded = project.find('%') != std::string::npos ? project : PercentEncode(project);
    project_url_ = base_url() + "/api/v4/projects/" + encoded;
  }

  Result<TriggerResult> Trigger(const TriggerRequest& request) override {
    if (!IsValidCorrelationId(request.correlation_id)) return Invalid("the correlation id is malformed");
    HttpCall call;
    call.method = "POST";
    call.url = project_url_ + "/trigger/pipeline";
    call.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                    {"Accept", "application/json"},
                    {"User-Agent", "storeplane"}};
    call.body = FormEncode({
        {"token", trigger_token_},
        {"ref", ref_},
        {"variables[STOREPLANE_CORRELATION_ID]", request.correlation_id},
        {"variables[STOREPLANE_STORE_ID]", request.store_id},
        {"variables[STOREPLANE_ENVIRONMENT]", request.environment},
        {"variables[STOREPLANE_ISOLATION_MODE]", request.isolation_mode},
        {"variables[STOREPLANE_KIND]", request.kind},
        {"variables[STOREPLANE_RELEASE]", request.release},
        {"variables[STOREPLANE_CALLBACK_URL]", request.callback_url},
    });

    constexpr std::string_view kWhat = "triggering a pipeline";
    auto answer = Send(kWhat, call);
    if (!answer.ok()) return answer.error();
    return Accepted(kWhat, *answer, "id", "web_url");
  }

  Result<RunStatus> Find(const std::string& correlation_id, const std::string& external_id) override {
    if (!IsValidCorrelationId(correlation_id)) return Invalid("the correlation id is malformed");
    if (!external_id.empty()) {
      if (!IsDecimalId(external_id)) return Invalid("the external id is not a pipeline id");
      const std::string what = "reading pipeline " + external_id;
      auto answer = Send(what, Read("/pipelines/" + external_id));
      if (!answer.ok()) return answer.error();
      if (answer->status == 200) {
        auto json = ParseJson(answer->body);
        if (!json || !json->is_object()) return Malformed(what);
        return StatusOf(*json);
      }
      if (answer->status != 404) return Refused(what, *answer);
      // Gone, or the id was wrong: look for the correlation id instead.
    }

    constexpr std::string_view kWhat = "listing triggered pipelines";
    auto answer = Send(kWhat, Read("/pipelines?per_page=20&order_by=id&sort=desc&source=trigger"));
    if (!answer.ok()) return answer.error();
    if (answer->status != 200) return Refused(kWhat, *answer);
    auto pipelines = ParseJson(answer->body);
    if (!pipelines || !pipelines->is_array()) return Malformed(kWhat);
    for (const auto& pipeline : pipelines->get_array()) {
      const std::string id = Text(Field(&pipeline, "id"));
      if (!IsDecimalId(id)) continue;
      const std::string what = "reading the variables of pipeline " + id;
      auto variables_answer = Send(what, Read("/pipelines/" + id + "/variables"));
      if (!variables_answer.ok()) return variables_answer.error();
      if (variables_answer->status == 404) continue;  // deleted meanwhile
      if (variables_answer->status != 200) return Refused(what, *variables_answer);
      auto variables = ParseJson(variables_answer->body);
      if (!variables || !variables->is_array()) return Malformed(what);
      for (const auto& variable : variables->get_array()) {
        if (Text(Field(&variable, "key")) == "STOREPLANE_CORRELATION_ID" &&
            Text(Field(&variable, "value")) == correlation_id) {
          return StatusOf(pipeline);
        }
      }
    }
    return RunStatus{};
  }

 private:
  HttpCall Read(const std::string& path_and_query) const {
    HttpCall call;
    call.url = project_url_ + path_and_query;
    call.headers = {{"Accept", "application/json"}, {"User-Agent", "storeplane"}};
    if (!api_token_.empty()) call.headers.emplace_back("PRIVATE-TOKEN", api_token_);
    return call;
  }

  std::string trigger_token_;
  std::string api_token_;
  std::string ref_;
  std::string project_url_;
};

}  // namespace

Result<std::unique_ptr<Provider>> MakeGitlabProvider(AdapterBasics basics, const ProviderConfig& config) {
  SP_RETURN_IF_ERROR(CheckSettings(config.settings, "gitlab", {"project", "ref"}, {"api_token_file", "api_token_env"}));
  if (!config.secret_file.empty() || !config.secret_env.empty()) {
    return Error::Invalid("gitlab providers take token_file or token_env, not a secret", "secret_file");
  }
  auto token = ReadCredential("token", config.token_file, config.token_env);
  if (!token.ok()) return token.error();
  if (token->empty()) {
    return Error::Invalid("gitlab providers need token_file or token_env (the pipeline trigger token)", "token_file");
  }
  auto api_token = ReadCredential("settings.api_token", Setting(config.settings, "api_token_file"),
                                  Setting(config.settings, "api_token_env"));
  if (!api_token.ok()) return api_token.error();
  return std::unique_ptr<Provider>(
      std::make_unique<GitlabProvider>(std::move(basics), std::move(*token), std::move(*api_token),
                                       Setting(config.settings, "project"), Setting(config.settings, "ref")));
}

}  // namespace storeplane::cicd
