#include "cicd/buildbot_provider.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <mutex>
#include <utility>
#include <vector>

namespace storeplane::cicd {
namespace {

constexpr std::int64_t kResultRetry = 5;
// The force scheduler parameters that carry the run's facts.
constexpr const char* kFacts[] = {"storeplane_correlation_id", "storeplane_store_id", "storeplane_environment",
                                  "storeplane_isolation_mode", "storeplane_kind",     "storeplane_release",
                                  "storeplane_callback_url"};

ProviderRunStatus MapResults(std::optional<std::int64_t> results) {
  switch (results.value_or(-1)) {
    case 0:  // SUCCESS
    case 1:  // WARNINGS
      return ProviderRunStatus::kSucceeded;
    case 6:  // CANCELLED
      return ProviderRunStatus::kCancelled;
    default:  // FAILURE, SKIPPED, EXCEPTION, RETRY as a final word, none, unknown
      return ProviderRunStatus::kFailed;
  }
}

// The collection named `plural` of a REST v2 answer ({"<plural>": [...], "meta": {...}}).
const boost::json::array* Collection(const std::optional<boost::json::value>& json, std::string_view plural) {
  const auto* list = Field(json ? &*json : nullptr, plural);
  return list == nullptr ? nullptr : list->if_array();
}

class BuildbotProvider final : public HttpAdapter {
 public:
  BuildbotProvider(AdapterBasics basics, std::string token, std::string scheduler, std::string builder)
      : HttpAdapter(std::move(basics), {token}),
        token_(std::move(token)),
        scheduler_(std::move(scheduler)),
        builder_(std::move(builder)) {}

  Result<TriggerResult> Trigger(const TriggerRequest& request) override {
    if (!IsValidCorrelationId(request.correlation_id)) return Invalid("the correlation id is malformed");
    auto builder_id = BuilderId();
    if (!builder_id.ok()) return builder_id.error();

    boost::json::object params;
    params["builderid"] = *builder_id;
    params["reason"] = "storeplane " + request.correlation_id;
    params["owner"] = "storeplane";
    params["storeplane_correlation_id"] = request.correlation_id;
    params["storeplane_store_id"] = request.store_id;
    params["storeplane_environment"] = request.environment;
    params["storeplane_isolation_mode"] = request.isolation_mode;
    params["storeplane_kind"] = request.kind;
    params["storeplane_release"] = request.release;
    params["storeplane_callback_url"] = request.callback_url;
    boost::json::object body;
    body["id"] = 1;
    body["jsonrpc"] = "2.0";
    body["method"] = "force";
    body["params"] = std::move(params);

    HttpCall call = Call("POST", Api("/forceschedulers/" + PercentEncode(scheduler_)));
    call.headers.emplace_back("Content-Type", "application/json");
    call.body = boost::json::serialize(body);

    const std::string what = "forcing scheduler " + scheduler_;
    auto answer = Send(what, call);
    if (!answer.ok()) return answer.error();
    if (answer->status < 200 || answer->status >= 300) return Refused(what, *answer);
    auto json = ParseJson(answer->body);
    if (json && Field(&*json, "error") != nullptr) {
      HttpAnswer refused = *answer;
      refused.status = 400;  // a JSON-RPC error inside a 2xx: the request was refused all the same
      return Refused(what, refused);
    }
    // Accepted whatever else the body says: an unreadable answer must not cause a second build.
    TriggerResult result;
    const auto* reply = Field(json ? &*json : nullptr, "result");
    const auto* pair = reply == nullptr ? nullptr : reply->if_array();
    if (pair != nullptr && pair->size() == 2) {
      if (const auto bsid = Integer(&(*pair)[0])) result.external_id = "buildset:" + std::to_string(*bsid);
      if (const auto* requests = (*pair)[1].if_object()) {
        for (const auto& [key, value] : *requests) {
          if (const auto brid = Integer(&value)) {
            result.external_url = base_url() + "/#/buildrequests/" + std::to_string(*brid);
            break;
          }
        }
      }
    }
    return result;
  }

  Result<RunStatus> Find(const std::string& correlation_id, const std::string& external_id) override {
    if (!IsValidCorrelationId(correlation_id)) return Invalid("the correlation id is malformed");
    constexpr std::string_view kPrefix = "buildset:";
    if (!external_id.empty()) {
      const std::string number =
          external_id.substr(0, kPrefix.size()) == kPrefix ? external_id.substr(kPrefix.size()) : std::string();
      if (!IsDecimalId(number)) return Invalid("the external id is not buildset:<n>");
      auto found = FindBuildset(number);
      if (!found.ok()) return found.error();
      if (found->has_value()) return **found;
      // Unknown buildset: look for the correlation id instead.
    }

    constexpr std::string_view kWhat = "listing buildsets";
    auto answer = Send(kWhat, Call("GET", Api("/buildsets?order=-bsid&limit=30")));
    if (!answer.ok()) return answer.error();
    if (answer->status != 200) return Refused(kWhat, *answer);
    const auto json = ParseJson(answer->body);
    const auto* buildsets = Collection(json, "buildsets");
    if (buildsets == nullptr) return Malformed(kWhat);
    for (const auto& buildset : *buildsets) {
      if (!ContainsToken(Text(Field(&buildset, "reason")), correlation_id)) continue;
      const std::string bsid = Text(Field(&buildset, "bsid"));
      if (!IsDecimalId(bsid)) continue;
      auto found = FindBuildset(bsid);
      if (!found.ok()) return found.error();
      if (found->has_value()) return **found;
      // A buildset without build requests: its own state is all there is.
      RunStatus status;
      status.external_id = "buildset:" + bsid;
      status.status = IsTrue(Field(&buildset, "complete")) ? MapResults(Integer(Field(&buildset, "results")))
                                                           : ProviderRunStatus::kQueued;
      return status;
    }
    return RunStatus{};
  }

 private:
  std::string Api(const std::string& path) const { return base_url() + "/api/v2" + path; }

  HttpCall Call(std::string method, std::string url) const {
    HttpCall call;
    call.method = std::move(method);
    call.url = std::move(url);
    call.headers = {{"Accept", "application/json"}, {"User-Agent", "storeplane"}};
    if (!token_.empty()) call.headers.emplace_back("Authorization", "Bearer " + token_);
    return call;
  }

  // The builder's id, once the force scheduler is known to exist, to start that builder and
  // to declare every fact storeplane sends (a force scheduler silently drops the rest).
  Result<std::int64_t> BuilderId() {
    {
      std::lock_guard lock(mutex_);
      if (builder_id_) return *builder_id_;
    }
    SP_RETURN_IF_ERROR(CheckScheduler());
    const std::string what = "looking up builder " + builder_;
    auto answer = Send(what, Call("GET", Api("/builders?name=" + PercentEncode(builder_))));
    if (!answer.ok()) return answer.error();
    if (answer->status != 200) return Refused(what, *answer);
    const auto json = ParseJson(answer->body);
    const auto* builders = Collection(json, "builders");
    if (builders == nullptr) return Malformed(what);
    for (const auto& builder : *builders) {
      if (Text(Field(&builder, "name")) != builder_) continue;
      if (const auto id = Integer(Field(&builder, "builderid"))) {
        std::lock_guard lock(mutex_);
        builder_id_ = *id;
        return *id;
      }
    }
    return Invalid("the master has no builder named " + builder_);
  }

  Status CheckScheduler() {
    const std::string what = "looking up force scheduler " + scheduler_;
    auto answer = Send(what, Call("GET", Api("/forceschedulers/" + PercentEncode(scheduler_))));
    if (!answer.ok()) return answer.error();
    if (answer->status != 200) return Refused(what, *answer);
    const auto json = ParseJson(answer->body);
    const auto* schedulers = Collection(json, "forceschedulers");
    if (schedulers == nullptr || schedulers->empty()) return Malformed(what);
    const auto& scheduler = schedulers->front();
    bool lists_builder = false;
    if (const auto* names = Field(&scheduler, "builder_names"); names != nullptr && names->is_array()) {
      for (const auto& name : names->get_array()) lists_builder = lists_builder || Text(&name) == builder_;
    }
    if (!lists_builder) return Invalid("force scheduler " + scheduler_ + " does not start builder " + builder_);
    std::vector<std::string> fields;
    CollectFieldNames(Field(&scheduler, "all_fields"), fields);
    for (const auto* fact : kFacts) {
      if (std::find(fields.begin(), fields.end(), fact) == fields.end()) {
        return Invalid("force scheduler " + scheduler_ + " does not declare the parameter " + fact);
      }
    }
    return Status::Ok();
  }

  // The names of a force scheduler's fields, nested ones included.
  static void CollectFieldNames(const boost::json::value* fields, std::vector<std::string>& out) {
    if (fields == nullptr || !fields->is_array()) return;
    for (const auto& field : fields->get_array()) {
      std::string name = Text(Field(&field, "fullName"));
      if (name.empty()) name = Text(Field(&field, "name"));
      if (!name.empty()) out.push_back(std::move(name));
      CollectFieldNames(Field(&field, "fields"), out);
    }
  }

  // nullopt when the buildset has no build requests (or does not exist).
  Result<std::optional<RunStatus>> FindBuildset(const std::string& bsid) {
    const std::string what = "reading the build requests of buildset " + bsid;
    auto answer = Send(what, Call("GET", Api("/buildrequests?buildsetid=" + bsid)));
    if (!answer.ok()) return answer.error();
    if (answer->status != 200) return Refused(what, *answer);
    const auto json = ParseJson(answer->body);
    const auto* requests = Collection(json, "buildrequests");
    if (requests == nullptr) return Malformed(what);
    if (requests->empty()) return std::optional<RunStatus>();

    std::optional<std::int64_t> known_builder;
    {
      std::lock_guard lock(mutex_);
      known_builder = builder_id_;
    }
    const boost::json::value* request = &requests->front();
    for (const auto& candidate : *requests) {
      if (known_builder && Integer(Field(&candidate, "builderid")) == known_builder) request = &candidate;
    }
    const std::string brid = Text(Field(request, "buildrequestid"));
    if (!IsDecimalId(brid)) return Malformed(what);

    RunStatus found;
    found.external_id = "buildset:" + bsid;
    found.external_url = base_url() + "/#/buildrequests/" + brid;

    const std::string builds_what = "reading the builds of build request " + brid;
    auto builds_answer = Send(builds_what, Call("GET", Api("/builds?buildrequestid=" + brid)));
    if (!builds_answer.ok()) return builds_answer.error();
    if (builds_answer->status != 200) return Refused(builds_what, *builds_answer);
    const auto builds_json = ParseJson(builds_answer->body);
    const auto* builds = Collection(builds_json, "builds");
    if (builds == nullptr) return Malformed(builds_what);
    const boost::json::value* newest = nullptr;
    for (const auto& build : *builds) {
      if (newest == nullptr || Integer(Field(&build, "buildid")) > Integer(Field(newest, "buildid"))) newest = &build;
    }
    if (newest != nullptr) {
      const std::string builder = Text(Field(newest, "builderid"));
      const std::string number = Text(Field(newest, "number"));
      if (!builder.empty() && !number.empty()) {
        found.external_url = base_url() + "/#/builders/" + builder + "/builds/" + number;
      }
    }

    if (IsTrue(Field(request, "complete"))) {
      found.status = MapResults(Integer(Field(request, "results")));
    } else if (newest == nullptr) {
      found.status = ProviderRunStatus::kQueued;
    } else if (!IsTrue(Field(newest, "complete"))) {
      found.status = ProviderRunStatus::kRunning;
    } else {
      const auto results = Integer(Field(newest, "results"));
      found.status = results == kResultRetry ? ProviderRunStatus::kQueued : MapResults(results);
    }
    return std::optional<RunStatus>(found);
  }

  std::string token_;
  std::string scheduler_;
  std::string builder_;
  std::mutex mutex_;
  std::optional<std::int64_t> builder_id_;  // guarded by mutex_
};

}  // namespace

Result<std::unique_ptr<Provider>> MakeBuildbotProvider(AdapterBasics basics, const ProviderConfig& config) {
  SP_RETURN_IF_ERROR(CheckSettings(config.settings, "buildbot", {"scheduler", "builder"}, {}));
  if (!config.secret_file.empty() || !config.secret_env.empty()) {
    return Error::Invalid("buildbot providers take an optional token_file or token_env, not a secret", "secret_file");
  }
  auto token = ReadCredential("token", config.token_file, config.token_env);
  if (!token.ok()) return token.error();
  return std::unique_ptr<Provider>(std::make_unique<BuildbotProvider>(std::move(basics), std::move(*token),
                                                                      Setting(config.settings, "scheduler"),
                                                                      Setting(config.settings, "builder")));
}

}  // namespace storeplane::cicd
