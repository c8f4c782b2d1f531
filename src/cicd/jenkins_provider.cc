#include "cicd/jenkins_provider.h"

#include <boost/json/array.hpp>
#include <utility>

namespace storeplane::cicd {
namespace {

constexpr std::string_view kCorrelationParameter = "STOREPLANE_CORRELATION_ID";

// "{base}/job/a/job/b" for "a/b"; nullopt for an empty segment.
std::optional<std::string> JobPath(std::string_view job) {
  std::string path;
  while (true) {
    const auto slash = job.find('/');
    const auto segment = job.substr(0, slash);
    if (segment.empty()) return std::nullopt;
    path += "/job/" + PercentEncode(segment);
    if (slash == std::string_view::npos) break;
    job.remove_prefix(slash + 1);
  }
  return path;
}

// Whether an item's or a build's actions carry STOREPLANE_CORRELATION_ID = `correlation_id`.
bool HasCorrelation(const boost::json::value& item, std::string_view correlation_id) {
  const auto* actions = Field(&item, "actions");
  if (actions == nullptr || !actions->is_array()) return false;
  for (const auto& action : actions->get_array()) {
    const auto* parameters = Field(&action, "parameters");
    if (parameters == nullptr || !parameters->is_array()) continue;
    for (const auto& parameter : parameters->get_array()) {
      if (Text(Field(&parameter, "name")) == kCorrelationParameter &&
          Text(Field(&parameter, "value")) == correlation_id) {
        return true;
      }
    }
  }
  return false;
}

RunStatus StatusOfBuild(const boost::json::value& build, const std::string& number) {
  RunStatus found;
  found.external_id = "build:" + number;
  found.external_url = Text(Field(&build, "url"));
  const auto* result = Field(&build, "result");
  if (IsTrue(Field(&build, "building")) || result == nullptr || result->is_null()) {
    found.status = ProviderRunStatus::kRunning;
    return found;
  }
  const std::string text = Text(result);
  if (text == "SUCCESS") {
    found.status = ProviderRunStatus::kSucceeded;
  } else if (text == "ABORTED") {
    found.status = ProviderRunStatus::kCancelled;
  } else {
    found.status = ProviderRunStatus::kFailed;  // FAILURE, UNSTABLE, NOT_BUILT, or unknown
  }
  return found;
}

class JenkinsProvider final : public HttpAdapter {
 public:
  JenkinsProvider(AdapterBasics basics, const std::string& token, std::string job_path)
      : HttpAdapter(std::move(basics), {token, token.substr(token.find(':') + 1), Base64(token)}),
        authorization_("Basic " + Base64(token)),
        job_url_(base_url() + job_path) {}

  Result<TriggerResult> Trigger(const TriggerRequest& request) override {
    if (!IsValidCorrelationId(request.correlation_id)) return Invalid("the correlation id is malformed");
    HttpCall call = Call("POST", job_url_ + "/buildWithParameters");
    call.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    call.body = FormEncode({
        {std::string(kCorrelationParameter), request.correlation_id},
        {"STOREPLANE_STORE_ID", request.store_id},
        {"STOREPLANE_ENVIRONMENT", request.environment},
        {"STOREPLANE_ISOLATION_MODE", request.isolation_mode},
        {"STOREPLANE_KIND", request.kind},
        {"STOREPLANE_RELEASE", request.release},
        {"STOREPLANE_CALLBACK_URL", request.callback_url},
    });

    constexpr std::string_view kWhat = "starting the job";
    auto answer = Send(kWhat, call);
    if (!answer.ok()) return answer.error();
    if (answer->status < 200 || answer->status >= 300) return Refused(kWhat, *answer);
    TriggerResult result;
    result.external_url = job_url_ + "/";
    const std::string location = answer->Header("location");
    constexpr std::string_view kQueueItem = "/queue/item/";
    if (const auto at = location.rfind(kQueueItem); at != std::string::npos) {
      std::string number = location.substr(at + kQueueItem.size());
      while (!number.empty() && number.back() == '/') number.pop_back();
      if (IsDecimalId(number)) result.external_id = "queue:" + number;
    }
    return result;
  }

  Result<RunStatus> Find(const std::string& correlation_id, const std::string& external_id) override {
    if (!IsValidCorrelationId(correlation_id)) return Invalid("the correlation id is malformed");
    if (!external_id.empty()) {
      const auto colon = external_id.find(':');
      const std::string kind = external_id.substr(0, colon);
      const std::string number = colon == std::string::npos ? std::string() : external_id.substr(colon + 1);
      if ((kind != "queue" && kind != "build") || !IsDecimalId(number)) {
        return Invalid("the external id is neither queue:<n> nor build:<n>");
      }
      auto found = kind == "queue" ? FindQueueItem(number) : FindBuild(number);
      if (!found.ok()) return found.error();
      if (found->has_value()) return **found;
      // Forgotten (or wrong): look for the correlation id instead.
    }
    return Search(correlation_id);
  }

 private:
  HttpCall Call(std::string method, std::string url) const {
    HttpCall call;
    call.method = std::move(method);
    call.url = std::move(url);
    call.headers = {{"Authorization", authorization_}, {"Accept", "application/json"}, {"User-Agent", "storeplane"}};
    return call;
  }

  // nullopt when Jenkins no longer knows the item (404).
  Result<std::optional<RunStatus>> FindQueueItem(const std::string& number) {
    const std::string what = "reading queue item " + number;
    auto answer = Send(what, Call("GET", base_url() + "/queue/item/" + number + "/api/json"));
    if (!answer.ok()) return answer.error();
    if (answer->status == 404) return std::optional<RunStatus>();
    if (answer->status != 200) return Refused(what, *answer);
    auto item = ParseJson(answer->body);
    if (!item || !item->is_object()) return Malformed(what);
    RunStatus found;
    found.external_id = "queue:" + number;
    found.external_url = job_url_ + "/";
    if (IsTrue(Field(&*item, "cancelled"))) {
      found.status = ProviderRunStatus::kCancelled;
      return std::optional<RunStatus>(found);
    }
    const auto build_number = Integer(Field(Field(&*item, "executable"), "number"));
    if (!build_number) {
      found.status = ProviderRunStatus::kQueued;
      return std::optional<RunStatus>(found);
    }
    auto build = FindBuild(std::to_string(*build_number));
    if (!build.ok()) return build.error();
    if (build->has_value()) return build;
    // The queue named a build its job does not show (deleted): still the run's last known state.
    found.status = ProviderRunStatus::kRunning;
    found.external_id = "build:" + std::to_string(*build_number);
    found.external_url = Text(Field(Field(&*item, "executable"), "url"));
    return std::optional<RunStatus>(found);
  }

  // nullopt when the job has no such build (404).
  Result<std::optional<RunStatus>> FindBuild(const std::string& number) {
    const std::string what = "reading build " + number;
    auto answer = Send(what, Call("GET", job_url_ + "/" + number + "/api/json"));
    if (!answer.ok()) return answer.error();
    if (answer->status == 404) return std::optional<RunStatus>();
    if (answer->status != 200) return Refused(what, *answer);
    auto build = ParseJson(answer->body);
    if (!build || !build->is_object()) return Malformed(what);
    return std::optional<RunStatus>(StatusOfBuild(*build, number));
  }

  Result<RunStatus> Search(const std::string& correlation_id) {
    // Queued first: an item that starts meanwhile is then found among the builds.
    constexpr std::string_view kQueueWhat = "reading the queue";
    auto queue = Send(kQueueWhat,
                      Call("GET", base_url() + "/queue/api/json?tree=items%5Bid,cancelled,actions%5Bparameters%5Bname,"
                                               "value%5D%5D%5D"));
    if (!queue.ok()) return queue.error();
    if (queue->status != 200) return Refused(kQueueWhat, *queue);
    auto queue_json = ParseJson(queue->body);
    const auto* items = Field(queue_json ? &*queue_json : nullptr, "items");
    if (items == nullptr || !items->is_array()) return Malformed(kQueueWhat);
    for (const auto& item : items->get_array()) {
      const std::string id = Text(Field(&item, "id"));
      if (!IsDecimalId(id) || !HasCorrelation(item, correlation_id)) continue;
      RunStatus found;
      found.status = IsTrue(Field(&item, "cancelled")) ? ProviderRunStatus::kCancelled : ProviderRunStatus::kQueued;
      found.external_id = "queue:" + id;
      found.external_url = job_url_ + "/";
      return found;
    }

    constexpr std::string_view kBuildsWhat = "listing the job's builds";
    auto builds =
        Send(kBuildsWhat, Call("GET", job_url_ + "/api/json?tree=builds%5Bnumber,result,building,url,actions%5B"
                                                 "parameters%5Bname,value%5D%5D%5D%7B0,50%7D"));
    if (!builds.ok()) return builds.error();
    if (builds->status != 200) return Refused(kBuildsWhat, *builds);
    auto builds_json = ParseJson(builds->body);
    const auto* list = Field(builds_json ? &*builds_json : nullptr, "builds");
    if (list == nullptr || !list->is_array()) return Malformed(kBuildsWhat);
    for (const auto& build : list->get_array()) {
      const std::string number = Text(Field(&build, "number"));
      if (IsDecimalId(number) && HasCorrelation(build, correlation_id)) return StatusOfBuild(build, number);
    }
    return RunStatus{};
  }

  std::string authorization_;
  std::string job_url_;
};

}  // namespace

Result<std::unique_ptr<Provider>> MakeJenkinsProvider(AdapterBasics basics, const ProviderConfig& config) {
  SP_RETURN_IF_ERROR(CheckSettings(config.settings, "jenkins", {"job"}, {}));
  const auto job_path = JobPath(Setting(config.settings, "job"));
  if (!job_path) {
    return Error::Invalid("settings.job must be a job name or folder/job path without empty parts", "settings.job");
  }
  if (!config.secret_file.empty() || !config.secret_env.empty()) {
    return Error::Invalid("jenkins providers take token_file or token_env, not a secret", "secret_file");
  }
  auto token = ReadCredential("token", config.token_file, config.token_env);
  if (!token.ok()) return token.error();
  if (token->empty()) return Error::Invalid("jenkins providers need token_file or token_env", "token_file");
  const auto colon = token->find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == token->size()) {
    // Named by where it came from; the content is never shown.
    return Error::Invalid("the jenkins token must have the form user:apitoken",
                          config.token_file.empty() ? "token_env" : "token_file");
  }
  return std::unique_ptr<Provider>(std::make_unique<JenkinsProvider>(std::move(basics), *token, *job_path));
}

}  // namespace storeplane::cicd
