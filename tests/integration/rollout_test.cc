// Fleet rollouts (ADR 0011, /v1/rollouts) against the real storeplaned and real shop-agents.
// A fake CI (the generic signed webhook provider) receives the triggers and a scripted
// pipeline answers them: per store, a deploy either "installs" the release (writes the fake
// Magento's release marker, which the agent reports) and calls back `succeeded`, or calls
// back `failed`, or is held until the test lets it go. Deploys and rollbacks are therefore
// verified by the server's real health gate (2 healthy heartbeats with the release, 1 s
// interval). Each test asserts the rollout through GET /v1/rollouts/{id} and its /targets,
// and what the CI saw: which stores were triggered, how often and in which order.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/callback_signature.h"
#include "tests/integration/fake_ci.h"
#include "tests/integration/integration_fixture.h"
#include "tests/support/agent_process.h"

namespace storeplane::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kTriggerSecret[] = "rollout-trigger-secret-0123456789";
constexpr char kCallbackSecret[] = "rollout-callback-secret-9876543210";

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-12-05T06:40:01.123Z" -> Unix ms; -1 when it is not that shape.
std::int64_t ParseTimeMs(const json::value& v) {
  if (!v.is_string()) return -1;
  const std::string text(v.as_string());
  std::tm tm{};
  int millis = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &millis) != 7) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + millis;
}

std::string Text(const json::object& o, const std::string& key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return "<absent>";
  if (v->is_null()) return "null";
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

// What a trigger told the pipeline.
struct TriggerFacts {
  std::string run;
  std::string store;
  std::string kind;
  std::string release;
  std::string callback_url;
  std::int64_t at_ms = 0;
};

std::optional<TriggerFacts> FactsOf(const FakeCi::Trigger& trigger) {
  boost::system::error_code ec;
  auto v = json::parse(trigger.body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  TriggerFacts f;
  auto text = [&](const char* key) {
    const auto* x = o.if_contains(key);
    return x != nullptr && x->is_string() ? std::string(x->as_string()) : std::string();
  };
  f.run = text("correlation_id");
  f.store = text("store_id");
  f.kind = text("kind");
  f.release = text("release");
  f.callback_url = text("callback_url");
  f.at_ms = trigger.received_at_ms;
  return f;
}

// The pipeline behind the fake CI. Provisions, rollbacks and unscripted deploys succeed; a
// success of a deploy or rollback first writes the release into the store's fake Magento
// (so the agent reports it and the health gate can pass), then calls back. Callbacks go to
// the trigger's callback_url and are retried while the server is unreachable or answers
// 5xx (a restart), with a new delivery id each time.
class ScriptedPipeline {
 public:
  // kSucceed: install the release, then call back `succeeded`; kFail: call back `failed`;
  // kBroken: call back `succeeded` without installing (the health gate will fail); kHold:
  // wait for Release().
  enum class Step { kSucceed, kFail, kBroken, kHold };

  ScriptedPipeline() : worker_([this] { Work(); }) {}
  ~ScriptedPipeline() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  ScriptedPipeline(const ScriptedPipeline&) = delete;
  ScriptedPipeline& operator=(const ScriptedPipeline&) = delete;

  void SetMagento(const std::string& store, const std::string& dir) {
    std::lock_guard lock(mu_);
    magento_[store] = dir;
  }
  // The outcomes of `store`'s next deploy triggers, in order; deploys after them succeed.
  void Script(const std::string& store, std::vector<Step> steps) {
    std::lock_guard lock(mu_);
    auto& queue = script_[store];
    queue.assign(steps.begin(), steps.end());
  }
  // Whether a deploy trigger of `store` is being held.
  bool Holding(const std::string& store) {
    std::lock_guard lock(mu_);
    return held_.contains(store);
  }
  // Lets `store`'s held trigger go on with `outcome` (kSucceed, kFail or kBroken).
  void Release(const std::string& store, Step outcome = Step::kSucceed) {
    {
      std::lock_guard lock(mu_);
      auto it = held_.find(store);
      if (it == held_.end()) {
        errors_.push_back("release of " + store + ", which holds nothing");
        return;
      }
      Job job = it->second;
      held_.erase(it);
      job.step = outcome;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  void Handle(const FakeCi::Trigger& trigger) {
    auto facts = FactsOf(trigger);
    {
      std::lock_guard lock(mu_);
      if (!facts || facts->run.empty() || facts->callback_url.empty()) {
        errors_.push_back("a trigger the pipeline cannot read: " + trigger.body);
        return;
      }
      Job job{*facts, Step::kSucceed};
      if (facts->kind == "deploy") {
        auto& queue = script_[facts->store];
        if (!queue.empty()) {
          job.step = queue.front();
          queue.pop_front();
        }
      }
      if (job.step == Step::kHold) {
        if (held_.contains(facts->store)) errors_.push_back("a second held trigger for " + facts->store);
        held_[facts->store] = std::move(job);
        return;
      }
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  // Callbacks the pipeline could not deliver, and other surprises.
  std::vector<std::string> Errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  struct Job {
    TriggerFacts facts;
    Step step = Step::kSucceed;
  };

  void Work() {
    client::HttpClient http;
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      const auto magento = magento_.find(job.facts.store);
      const std::string dir = magento == magento_.end() ? std::string() : magento->second;
      lock.unlock();
      const bool install = job.step == Step::kSucceed && !job.facts.release.empty() && !dir.empty() &&
                           (job.facts.kind == "deploy" || job.facts.kind == "rollback");
      if (install) {
        // Atomically, so that the agent never reads half a marker.
        { std::ofstream(dir + "/.storeplane-release.tmp", std::ios::trunc) << job.facts.release << "\n"; }
        std::error_code ec;
        fs::rename(dir + "/.storeplane-release.tmp", dir + "/.storeplane-release", ec);
      }
      const std::string error = Deliver(http, job);
      lock.lock();
      if (!error.empty()) errors_.push_back(error);
    }
  }

  // The signed callback, retried for up to 60 s while the server cannot take it.
  std::string Deliver(client::HttpClient& http, const Job& job) {
    const std::string body = R"({"correlation_id": ")" + job.facts.run + R"(", "status": ")" +
                             (job.step == Step::kFail ? "failed" : "succeeded") + R"("})";
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::string last;
    for (int attempt = 1; std::chrono::steady_clock::now() < deadline; ++attempt) {
      const std::int64_t ts = NowMs() / 1000;
      auto resp = http.Send({"POST",
                             job.facts.callback_url,
                             {{"Content-Type", "application/json"},
                              {"X-Storeplane-Timestamp", std::to_string(ts)},
                              {"X-Storeplane-Signature", core::SignPayload(kCallbackSecret, ts, body)},
                              {"X-Storeplane-Delivery", "pipe-" + job.facts.run + "-" + std::to_string(attempt)}},
                             body,
                             5000});
      if (resp.ok() && resp->status == 200) return "";
      if (resp.ok() && resp->status < 500) {
        return "callback for " + job.facts.run + " (" + job.facts.store + ") refused: " + std::to_string(resp->status) +
               " " + resp->body;
      }
      last = resp.ok() ? std::to_string(resp->status) + " " + resp->body : resp.error().message;
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, 200ms, [&] { return stopping_; })) return "";
    }
    return "callback for " + job.facts.run + " never delivered: " + last;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::string> magento_;
  std::map<std::string, std::deque<Step>> script_;
  std::map<std::string, Job> held_;
  std::deque<Job> jobs_;
  std::vector<std::string> errors_;
  std::thread worker_;  // last: started once the rest exists
};

using Step = ScriptedPipeline::Step;

class RolloutTest : public ServerTest {
 protected:
  // Provider pacing for deploys and rollbacks (0: none); see RolloutPacingTest.
  virtual int PacedTriggersPerMinute() const { return 0; }

  void SetUp() override {
    ci_.OnTrigger([this](const FakeCi::Trigger& t) { pipeline_.Handle(t); });
    dir_ = std::make_unique<TempDir>();
    token_file_ = dir_->path() + "/admin.token";
    policy_file_ = dir_->path() + "/policy.yaml";
    WritePolicy(Policy(""));
    std::ofstream(dir_->path() + "/trigger.secret") << kTriggerSecret << "\n";
    std::ofstream(dir_->path() + "/callback.secret") << kCallbackSecret << "\n";
    auto provider = [&](const std::string& name, int per_minute) {
      std::ostringstream out;
      out << "    " << name << ":\n"
          << "      type: webhook\n"
          << "      base_url: " << ci_.url() << "\n"
          << "      secret_file: " << dir_->path() << "/trigger.secret\n"
          << "      callback_secret_file: " << dir_->path() << "/callback.secret\n";
      if (per_minute > 0) out << "      max_triggers_per_minute: " << per_minute << "\n";
      return out.str();
    };
    std::ofstream config(dir_->path() + "/config.yaml");
    config << "cicd:\n"
           << "  run_timeout_s: 120\n"
           << "  poll_interval_s: 3600\n"
           << "  health_gate: {consecutive: 2, window_s: 8}\n"
           << "  providers:\n"
           << provider("hook", 0);
    if (PacedTriggersPerMinute() > 0) config << provider("paced", PacedTriggersPerMinute());
    config << "  routes:\n";
    if (PacedTriggersPerMinute() > 0) config << "    - kinds: [deploy, rollback]\n      provider: paced\n";
    config << "    - provider: hook\n";
    config.close();
    server_env_ = {"STOREPLANE_AGENTS_HEARTBEAT_INTERVAL_S=1"};
    StartServer({"--config", dir_->path() + "/config.yaml"});
    ASSERT_FALSE(token_.empty());
  }

  void TearDown() override {
    for (auto& [store, agent] : agents_) {
      if (agent && agent->running()) agent->Stop();
    }
    ServerTest::TearDown();
    for (const auto& e : pipeline_.Errors()) ADD_FAILURE() << "pipeline: " << e;
  }

  // The lifecycle roles plus the rollout actions: admin creates and steers rollouts, bob
  // approves waves (a principal other than the creator), keeper mints bob's token.
  static std::string Policy(const std::string& extra) {
    return R"(version: 1
roles:
  operator:
    allow:
      - actions: [store.*, deploy.request, rollback.request, run.read, operation.*, agent.*, change.read,
                  principal.whoami, window.read, rollout.read, rollout.create, rollout.pause, rollout.resume,
                  rollout.abort, rollout.approve]
  approver:
    allow:
      - actions: [store.read, run.read, change.read, change.approve, change.reject, rollout.read, rollout.approve]
  auditor:
    allow:
      - actions: [audit.read, audit.export]
  tokens:
    allow:
      - actions: [token.*]
principals:
  admin:
    kind: operator
    roles: [operator, auditor, tokens]
  bob:
    kind: operator
    roles: [approver]
  keeper:
    kind: operator
    roles: [tokens]
)" + extra;
  }

  void Reload(const std::string& policy) {
    const auto before = Occurrences(server_->Logs(), "policy reloaded");
    WritePolicy(policy);
    server_->SendSignal(SIGHUP);
    ASSERT_TRUE(WaitFor([&] { return Occurrences(server_->Logs(), "policy reloaded") > before; }, 5s))
        << server_->Logs();
  }
  static std::size_t Occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  // A token for bob (approver) minted by keeper, not by the rollout's creator.
  std::string BobToken() {
    const auto keeper = CreateToken("keeper");
    auto minted =
        CallAs(keeper, "POST", "/v1/tokens", R"({"principal": "bob"})", {{"Content-Type", "application/json"}});
    EXPECT_EQ(minted.status, 201) << minted.body;
    return std::string(Json(minted)["token"].as_string());
  }

  bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return condition();
  }

  json::object Store(const std::string& id) { return Json(Call("GET", "/v1/stores/" + id)); }
  json::object Run(const std::string& id) { return Json(Call("GET", "/v1/runs/" + id)); }
  json::object Health(const std::string& id) { return Json(Call("GET", "/v1/stores/" + id + "/health")); }

  static std::string StoreId(int i) { return "shop-" + std::to_string(i); }

  // `n` staging stores shop-1..shop-n (plan order is their byte order), provisioned through
  // the pipeline and active, each with a real agent whose fake Magento is at r1 (except the
  // ones in `without_agent`, never enrolled). With `good_release`, each agent's store first
  // gets a verified deploy of r1, so that it has a last known good release to roll back to.
  void Fleet(int n, bool good_release, const std::set<std::string>& without_agent = {}) {
    std::vector<std::string> ids;
    for (int i = 1; i <= n; ++i) ids.push_back(StoreId(i));
    for (const auto& id : ids) {
      ASSERT_EQ(Register(id, "staging").status, 201);
      auto resp = Call("POST", "/v1/stores/" + id + "/provision", "", {});
      ASSERT_EQ(resp.status, 202) << resp.body;
    }
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const auto& id : ids)
            if (Text(Store(id), "state") != "active") return false;
          return true;
        },
        20s))
        << Snapshot();
    std::vector<std::string> with_agent;
    for (const auto& id : ids) {
      if (without_agent.contains(id)) continue;
      with_agent.push_back(id);
      const auto magento = dir_->path() + "/magento-" + id;
      ASSERT_TRUE(AgentProcess::CopyFakeMagento(magento));
      std::ofstream(magento + "/.storeplane-release") << "r1\n";
      std::ofstream(magento + "/var/.storeplane-cron") << "";
      pipeline_.SetMagento(id, magento);
      auto token = Call("POST", "/v1/stores/" + id + "/enrollment-tokens", "", {});
      ASSERT_EQ(token.status, 201) << token.body;
      const auto config = dir_->path() + "/agent-" + id + ".yaml";
      std::ofstream(config) << "control_plane_url: " << server_->url() << "\nstore_id: " << id
                            << "\ncredential_file: " << dir_->path() << "/cred-" << id
                            << "\nstate_dir: " << dir_->path() << "/state-" << id << "\nmagento_root: " << magento
                            << "\nphp_binary: " << magento << "/php\nisolation_mode: shared\n"
                            << "allowed_operations: [health.probe]\n";
      auto agent = std::make_unique<AgentProcess>(
          config, dir_->path() + "/agent-" + id + ".log",
          std::vector<std::string>{"SHOP_AGENT_ENROLLMENT_TOKEN=" + std::string(Json(token)["token"].as_string())});
      ASSERT_TRUE(agent->Start());
      agents_[id] = std::move(agent);
    }
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const auto& id : with_agent) {
            const auto health = Health(id);
            if (Text(health, "health") != "healthy" || Text(health, "release") != "r1") return false;
          }
          return true;
        },
        20s))
        << AgentLogs();
    if (good_release) {
      std::vector<std::string> runs;
      for (const auto& id : with_agent) {
        auto resp = Call("POST", "/v1/stores/" + id + "/deployments", R"({"release": "r1"})",
                         {{"Content-Type", "application/json"}});
        ASSERT_EQ(resp.status, 202) << resp.body;
        runs.emplace_back(Json(resp)["id"].as_string());
      }
      ASSERT_TRUE(WaitFor(
          [&] {
            for (const auto& run : runs)
              if (Text(Run(run), "state") != "verified") return false;
            return true;
          },
          30s))
          << "the seed deploys of r1 were not verified";
      for (const auto& id : with_agent) ASSERT_EQ(Text(Store(id), "last_known_good_release"), "r1");
    }
    baseline_ = ci_.count();
  }

  std::string AgentLogs() {
    std::string all;
    for (const auto& [id, agent] : agents_) all += "---- agent " + id + "\n" + agent->Logs();
    return all;
  }

  // The triggers since the fleet was ready, of `kind` (and `release` when given).
  std::vector<TriggerFacts> Triggers(const std::string& kind, const std::string& release = "") {
    std::vector<TriggerFacts> out;
    const auto all = ci_.all();
    for (std::size_t i = baseline_; i < all.size(); ++i) {
      auto f = FactsOf(all[i]);
      if (!f) continue;
      if (f->kind == kind && (release.empty() || f->release == release)) out.push_back(*f);
    }
    return out;
  }
  std::map<std::string, int> TriggersPerStore(const std::string& kind, const std::string& release = "") {
    std::map<std::string, int> n;
    for (const auto& f : Triggers(kind, release)) ++n[f.store];
    return n;
  }
  std::string TriggerList() {
    std::string out;
    const auto all = ci_.all();
    for (std::size_t i = baseline_; i < all.size(); ++i) {
      if (auto f = FactsOf(all[i])) out += "  " + f->kind + " " + f->store + " " + f->release + " " + f->run + "\n";
    }
    return out;
  }

  // ---- The rollouts API -----------------------------------------------------------------

  // A POST /v1/rollouts body for r2 to every staging store.
  static std::string Spec(const std::string& waves, int max_concurrent,
                          const std::string& budget = R"({"max_failures": 0})", const std::string& extra = "") {
    return R"({"release": "r2", "selector": {"environment": "staging"}, "waves": )" + waves +
           R"(, "max_concurrent": )" + std::to_string(max_concurrent) + R"(, "failure_budget": )" + budget + extra +
           "}";
  }
  // Creates the rollout (201 expected); its id, or "" on failure.
  std::string Create(const std::string& spec) {
    auto resp = Call("POST", "/v1/rollouts", spec, {{"Content-Type", "application/json"}});
    EXPECT_EQ(resp.status, 201) << resp.body;
    if (resp.status != 201) return "";
    auto body = Json(resp);
    EXPECT_EQ(resp.Header("location"), "/v1/rollouts/" + Text(body, "id"));
    return Text(body, "id");
  }
  json::object Rollout(const std::string& id) { return Json(Call("GET", "/v1/rollouts/" + id)); }
  // The "items" of a list answer (empty when there are none or the answer is not a list).
  static json::array Items(const client::HttpResponse& resp) {
    auto body = Json(resp);
    return body.contains("items") && body["items"].is_array() ? body["items"].as_array() : json::array();
  }
  json::array Targets(const std::string& id) {
    auto resp = Call("GET", "/v1/rollouts/" + id + "/targets?limit=1000");
    EXPECT_EQ(resp.status, 200) << resp.body;
    auto body = Json(resp);
    return body.contains("items") && body["items"].is_array() ? body["items"].as_array() : json::array();
  }
  std::map<std::string, json::object> TargetsByStore(const std::string& id) {
    std::map<std::string, json::object> out;
    for (const auto& t : Targets(id)) out[Text(t.as_object(), "store_id")] = t.as_object();
    return out;
  }
  static long Count(const json::object& rollout, const std::string& key) {
    const auto* counts = rollout.if_contains("counts");
    if (counts == nullptr || !counts->is_object()) return -1;
    const auto* v = counts->as_object().if_contains(key);
    return v != nullptr && v->is_int64() ? static_cast<long>(v->as_int64()) : -1;
  }
  static long Number(const json::object& o, const std::string& key) {
    const auto* v = o.if_contains(key);
    return v != nullptr && v->is_int64() ? static_cast<long>(v->as_int64()) : -1;
  }
  // For failure messages: the rollout, its targets and what the CI saw.
  std::string Describe(const std::string& id) {
    return "rollout: " + json::serialize(Rollout(id)) + "\ntargets: " + json::serialize(Targets(id)) +
           "\ntriggers since the fleet was ready:\n" + TriggerList();
  }
  bool WaitState(const std::string& id, const std::string& state, std::chrono::milliseconds timeout) {
    return WaitFor([&] { return Text(Rollout(id), "state") == state; }, timeout);
  }
  client::HttpResponse Command(const std::string& id, const std::string& command, const std::string& body = "{}",
                               const std::string& token = "") {
    const std::string path = "/v1/rollouts/" + id + "/" + command;
    if (!token.empty()) return CallAs(token, "POST", path, body, {{"Content-Type", "application/json"}});
    return Call("POST", path, body, {{"Content-Type", "application/json"}});
  }
  // The rollout's waiting_for reason ("" when null or absent).
  static std::string WaitingFor(const json::object& rollout) {
    const auto* w = rollout.if_contains("waiting_for");
    if (w == nullptr || !w->is_object()) return "";
    return Text(w->as_object(), "reason");
  }

  // Every target succeeded with a verified deploy run of r2 that belongs to the rollout, and
  // the store and its agent are at r2.
  void ExpectAllSucceeded(const std::string& id, const std::vector<std::string>& stores) {
    const auto targets = TargetsByStore(id);
    for (const auto& store : stores) {
      SCOPED_TRACE(store);
      ASSERT_TRUE(targets.contains(store));
      const auto& t = targets.at(store);
      EXPECT_EQ(Text(t, "state"), "succeeded");
      EXPECT_EQ(Text(t, "deploy_final_state"), "verified");
      EXPECT_EQ(Text(t, "skip_reason"), "null");
      const auto run = Run(Text(t, "deploy_run_id"));
      EXPECT_EQ(Text(run, "kind"), "deploy");
      EXPECT_EQ(Text(run, "release"), "r2");
      EXPECT_EQ(Text(run, "state"), "verified");
      EXPECT_EQ(Text(run, "rollout_id"), id);
      EXPECT_EQ(Text(Store(store), "current_release"), "r2");
    }
  }

  // Every deploy trigger of wave k+1 came after every deploy run of wave k had ended, and
  // at most `max_concurrent` deploys were in flight (trigger received .. run finished) at once.
  void ExpectWavesInOrder(const std::string& id, int max_concurrent) {
    std::map<std::string, std::int64_t> triggered_at;
    for (const auto& f : Triggers("deploy", "r2")) triggered_at.emplace(f.store, f.at_ms);
    std::map<int, std::int64_t> wave_first_trigger, wave_last_end;
    std::vector<std::pair<std::int64_t, int>> edges;  // (time, +1 start / -1 end)
    for (const auto& [store, t] : TargetsByStore(id)) {
      if (Text(t, "state") != "succeeded" && Text(t, "state") != "failed") continue;
      const int wave = static_cast<int>(Number(t, "wave"));
      const auto run = Run(Text(t, "deploy_run_id"));
      const std::int64_t end = ParseTimeMs(run.at("finished_at"));
      ASSERT_GT(end, 0) << json::serialize(run);
      ASSERT_TRUE(triggered_at.contains(store)) << store << " has a deploy run but no trigger";
      const std::int64_t start = triggered_at[store];
      wave_first_trigger[wave] = wave_first_trigger.contains(wave) ? std::min(wave_first_trigger[wave], start) : start;
      wave_last_end[wave] = std::max(wave_last_end[wave], end);
      edges.emplace_back(start, +1);
      edges.emplace_back(end, -1);
    }
    for (const auto& [wave, first] : wave_first_trigger) {
      if (wave == 0) continue;
      ASSERT_TRUE(wave_last_end.contains(wave - 1)) << "wave " << wave << " ran, wave " << wave - 1 << " did not";
      EXPECT_GE(first, wave_last_end[wave - 1])
          << "a store of wave " << wave << " was triggered before wave " << wave - 1 << " ended\n"
          << Describe(id);
    }
    std::sort(edges.begin(), edges.end());  // an end before a start at the same ms
    int in_flight = 0, peak = 0;
    for (const auto& [at, delta] : edges) peak = std::max(peak, in_flight += delta);
    EXPECT_LE(peak, max_concurrent) << Describe(id);
  }

  void Restart(bool kill) {
    const auto url = server_->url();
    if (kill) {
      server_->Kill();
    } else {
      EXPECT_EQ(server_->Stop(), 0) << server_->Logs();
    }
    earlier_logs_ += server_->Logs();
    StartServer({"--config", dir_->path() + "/config.yaml", "--listen", url.substr(url.find("//") + 2)});
  }

  // Declared before ci_, so that the CI (whose thread calls the pipeline) stops first.
  ScriptedPipeline pipeline_;
  FakeCi ci_;
  std::map<std::string, std::unique_ptr<AgentProcess>> agents_;
  std::size_t baseline_ = 0;
  std::string earlier_logs_;
};

// a. Canary 1, growth factor 2, at most 2 at once: waves [shop-1] [shop-2 shop-3]
// [shop-4 shop-5 shop-6]; each store deployed once, wave after wave, all verified.
TEST_F(RolloutTest, AMultiWaveRolloutVerifiesEveryStoreOnceWaveAfterWave) {
  ASSERT_NO_FATAL_FAILURE(Fleet(6, false));
  const auto spec = Spec(R"({"canary_size": 1, "growth_factor": 2})", 2);
  auto resp = Call("POST", "/v1/rollouts", spec,
                   {{"Content-Type", "application/json"}, {"Idempotency-Key", "rollout-r2-staging"}});
  ASSERT_EQ(resp.status, 201) << resp.body;
  const auto created = Json(resp);
  const std::string id = Text(created, "id");
  // A client's retry with the same key gets the same rollout back, not a second rollout.
  auto retried = Call("POST", "/v1/rollouts", spec,
                      {{"Content-Type", "application/json"}, {"Idempotency-Key", "rollout-r2-staging"}});
  EXPECT_EQ(retried.status, 201) << retried.body;
  EXPECT_EQ(Text(Json(retried), "id"), id) << retried.body;
  EXPECT_EQ(id.rfind("rol_", 0), 0u) << resp.body;
  EXPECT_EQ(Text(created, "state"), "pending");
  EXPECT_EQ(Text(created, "release"), "r2");
  EXPECT_EQ(Text(created, "environment"), "staging");
  EXPECT_EQ(Text(created, "created_by"), "admin");
  EXPECT_EQ(Number(created, "wave_count"), 3);
  EXPECT_EQ(Count(created, "planned"), 6);
  ASSERT_TRUE(created.contains("waves") && created.at("waves").is_array()) << resp.body;
  std::vector<long> sizes;
  for (const auto& w : created.at("waves").as_array()) sizes.push_back(Number(w.as_object(), "size"));
  EXPECT_EQ(sizes, (std::vector<long>{1, 2, 3}));

  ASSERT_TRUE(WaitState(id, "succeeded", 90s)) << Describe(id);
  const auto done = Rollout(id);
  EXPECT_EQ(Count(done, "succeeded"), 6) << json::serialize(done);
  for (const char* zero : {"waiting", "in_flight", "failed", "skipped", "rolled_back", "not_started"}) {
    EXPECT_EQ(Count(done, zero), 0) << zero;
  }
  EXPECT_EQ(Number(done, "failed_deploys"), 0);
  EXPECT_EQ(Number(done, "current_wave"), 2);
  EXPECT_NE(Text(done, "finished_at"), "null");
  EXPECT_EQ(Text(done, "waiting_for"), "null");
  for (const auto& w : done.at("waves").as_array()) {
    EXPECT_EQ(Count(w.as_object(), "succeeded"), Number(w.as_object(), "size")) << json::serialize(w);
  }

  // Plan order is byte order: the canary is shop-1, then shop-2 and shop-3.
  const auto targets = TargetsByStore(id);
  ASSERT_EQ(targets.size(), 6u);
  const std::map<std::string, int> waves = {{"shop-1", 0}, {"shop-2", 1}, {"shop-3", 1},
                                            {"shop-4", 2}, {"shop-5", 2}, {"shop-6", 2}};
  for (const auto& [store, wave] : waves) EXPECT_EQ(Number(targets.at(store), "wave"), wave) << store;
  std::vector<std::string> stores;
  for (int i = 1; i <= 6; ++i) stores.push_back(StoreId(i));
  ExpectAllSucceeded(id, stores);

  // Exactly one trigger per store, nothing else sent.
  const auto per_store = TriggersPerStore("deploy", "r2");
  EXPECT_EQ(per_store.size(), 6u) << TriggerList();
  for (const auto& [store, n] : per_store) EXPECT_EQ(n, 1) << store << " triggered " << n << " times";
  EXPECT_EQ(ci_.count() - baseline_, 6u) << TriggerList();
  ExpectWavesInOrder(id, 2);

  // The runs know their rollout; the list shows it.
  const auto runs = Items(Call("GET", "/v1/runs?rollout=" + id + "&limit=100"));
  EXPECT_EQ(runs.size(), 6u) << json::serialize(runs);
  for (const auto& run : runs) EXPECT_EQ(Text(run.as_object(), "rollout_id"), id);
  const auto listed = Items(Call("GET", "/v1/rollouts?environment=staging"));
  ASSERT_EQ(listed.size(), 1u) << json::serialize(listed);
  EXPECT_EQ(Text(listed[0].as_object(), "state"), "succeeded");
  EXPECT_TRUE(Items(Call("GET", "/v1/rollouts?active=true")).empty());
}

// b. A budget of 0 failures: the canary's failed deploy halts the rollout. The canary's
// deploy had started (the pipeline ran and failed), so the halted wave rolls it back to its
// last known good release; the later waves never start.
TEST_F(RolloutTest, AFailedCanaryHaltsAndIsRolledBackAndNothingElseIsTriggered) {
  ASSERT_NO_FATAL_FAILURE(Fleet(4, true));
  pipeline_.Script("shop-1", {Step::kFail});
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 2})", 2));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitState(id, "failed", 60s)) << Describe(id);
  const auto done = Rollout(id);
  EXPECT_EQ(Text(done, "ending"), "failure_budget");
  EXPECT_EQ(Number(done, "failed_deploys"), 1);
  EXPECT_EQ(Number(done, "allowed_failures"), 0);
  EXPECT_EQ(Number(done, "current_wave"), 0);
  EXPECT_EQ(Count(done, "rolled_back"), 1) << json::serialize(done);
  EXPECT_EQ(Count(done, "not_started"), 3);
  for (const char* zero : {"waiting", "in_flight", "succeeded", "failed", "skipped", "rollback_failed"}) {
    EXPECT_EQ(Count(done, zero), 0) << zero;
  }

  const auto targets = TargetsByStore(id);
  const auto& canary = targets.at("shop-1");
  EXPECT_EQ(Text(canary, "state"), "rolled_back") << json::serialize(canary);
  EXPECT_EQ(Text(canary, "deploy_final_state"), "failed");
  EXPECT_EQ(Text(canary, "previous_release"), "r1");
  EXPECT_EQ(Text(canary, "rollback_final_state"), "verified");
  const auto rollback = Run(Text(canary, "rollback_run_id"));
  EXPECT_EQ(Text(rollback, "kind"), "rollback");
  EXPECT_EQ(Text(rollback, "release"), "r1");
  EXPECT_EQ(Text(rollback, "state"), "verified");
  EXPECT_EQ(Text(rollback, "rollout_id"), id);
  EXPECT_EQ(Text(Run(Text(canary, "deploy_run_id")), "state"), "failed");
  for (const char* later : {"shop-2", "shop-3", "shop-4"}) {
    EXPECT_EQ(Text(targets.at(later), "state"), "not_started") << later;
    EXPECT_EQ(Text(targets.at(later), "deploy_run_id"), "null") << later;
  }

  // The CI saw one deploy (the canary's) and one rollback to r1.
  EXPECT_EQ(TriggersPerStore("deploy"), (std::map<std::string, int>{{"shop-1", 1}})) << TriggerList();
  EXPECT_EQ(TriggersPerStore("rollback", "r1"), (std::map<std::string, int>{{"shop-1", 1}})) << TriggerList();
  EXPECT_EQ(ci_.count() - baseline_, 2u) << TriggerList();
  EXPECT_EQ(Text(Store("shop-1"), "current_release"), "r1");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(ci_.count() - baseline_, 2u) << "nothing after the end\n" << TriggerList();
}

// b'. The canary's pipeline succeeds but the store never shows the release: its health gate
// fails (verification_failed) and the run coordinator starts the automatic rollback (ADR
// 0008). The halted rollout does not roll that store back a second time.
TEST_F(RolloutTest, ACanaryThatFailsItsHealthGateIsRolledBackOnceByTheCoordinator) {
  ASSERT_NO_FATAL_FAILURE(Fleet(3, true));
  pipeline_.Script("shop-1", {Step::kBroken});
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 2})", 2));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitState(id, "failed", 40s)) << Describe(id);
  const auto done = Rollout(id);
  EXPECT_EQ(Text(done, "ending"), "failure_budget");
  EXPECT_EQ(Number(done, "failed_deploys"), 1);
  EXPECT_EQ(Count(done, "failed"), 1) << json::serialize(done);
  EXPECT_EQ(Count(done, "not_started"), 2);
  EXPECT_EQ(Count(done, "rolled_back"), 0);
  const auto canary = TargetsByStore(id).at("shop-1");
  EXPECT_EQ(Text(canary, "state"), "failed") << json::serialize(canary);
  EXPECT_EQ(Text(canary, "deploy_final_state"), "verification_failed");
  EXPECT_EQ(Text(canary, "rollback_run_id"), "null") << "the coordinator's rollback is not the rollout's";

  // Exactly one rollback of shop-1 to r1: the coordinator's, requested by system.
  ASSERT_TRUE(WaitFor([&] { return TriggersPerStore("rollback").size() == 1; }, 15s)) << TriggerList();
  int rollbacks = 0;
  for (const auto& item : Items(Call("GET", "/v1/runs?store=shop-1&limit=100"))) {
    const auto& run = item.as_object();
    if (Text(run, "kind") != "rollback") continue;
    ++rollbacks;
    EXPECT_EQ(Text(run, "requested_by"), "system") << json::serialize(run);
    EXPECT_EQ(Text(run, "release"), "r1");
  }
  EXPECT_EQ(rollbacks, 1);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(TriggersPerStore("rollback"), (std::map<std::string, int>{{"shop-1", 1}})) << TriggerList();
  EXPECT_EQ(TriggersPerStore("deploy"), (std::map<std::string, int>{{"shop-1", 1}})) << TriggerList();
}

// c. A budget of 1: a failure in wave 1 does not halt; a second in wave 2 does. The halted
// wave (2) is rolled back, its failed store included; wave 1 keeps its outcome.
TEST_F(RolloutTest, TheSecondFailureExceedsABudgetOfOne) {
  ASSERT_NO_FATAL_FAILURE(Fleet(6, true));
  // Waves: [shop-1] [shop-2 shop-3] [shop-4 shop-5] [shop-6].
  pipeline_.Script("shop-2", {Step::kFail});
  pipeline_.Script("shop-4", {Step::kHold});
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 2})", 2, R"({"max_failures": 1})"));
  ASSERT_FALSE(id.empty());

  // Wave 2 started after one failure in wave 1: within the budget, the rollout went on.
  ASSERT_TRUE(WaitFor([&] { return pipeline_.Holding("shop-4"); }, 40s)) << Describe(id);
  {
    const auto r = Rollout(id);
    EXPECT_EQ(Text(r, "state"), "running") << json::serialize(r);
    EXPECT_EQ(Number(r, "current_wave"), 2);
    EXPECT_EQ(Number(r, "failed_deploys"), 1);
    EXPECT_EQ(Number(r, "allowed_failures"), 1);
    EXPECT_EQ(Text(r, "ending"), "null");
    EXPECT_EQ(Count(r, "failed"), 1);
    EXPECT_EQ(Count(r, "succeeded"), 2);
  }
  pipeline_.Release("shop-4", Step::kFail);

  ASSERT_TRUE(WaitState(id, "failed", 60s)) << Describe(id);
  const auto done = Rollout(id);
  EXPECT_EQ(Text(done, "ending"), "failure_budget");
  EXPECT_EQ(Number(done, "failed_deploys"), 2);
  EXPECT_EQ(Number(done, "allowed_failures"), 1);
  EXPECT_EQ(Number(done, "current_wave"), 2);
  EXPECT_EQ(Count(done, "succeeded"), 2) << json::serialize(done);  // shop-1, shop-3
  EXPECT_EQ(Count(done, "failed"), 1);                              // shop-2 (wave 1)
  EXPECT_EQ(Count(done, "rolled_back"), 2);                         // shop-4, shop-5 (wave 2)
  EXPECT_EQ(Count(done, "not_started"), 1);                         // shop-6
  EXPECT_EQ(Count(done, "in_flight"), 0);
  EXPECT_EQ(Count(done, "waiting"), 0);

  const auto targets = TargetsByStore(id);
  EXPECT_EQ(Text(targets.at("shop-1"), "state"), "succeeded");
  EXPECT_EQ(Text(targets.at("shop-2"), "state"), "failed");
  EXPECT_EQ(Text(targets.at("shop-2"), "deploy_final_state"), "failed");
  EXPECT_EQ(Text(targets.at("shop-2"), "rollback_run_id"), "null") << "an earlier wave is not rolled back";
  EXPECT_EQ(Text(targets.at("shop-3"), "state"), "succeeded");
  for (const char* store : {"shop-4", "shop-5"}) {
    EXPECT_EQ(Text(targets.at(store), "state"), "rolled_back") << json::serialize(targets.at(store));
    EXPECT_EQ(Text(targets.at(store), "rollback_final_state"), "verified") << store;
    EXPECT_EQ(Text(targets.at(store), "previous_release"), "r1") << store;
  }
  EXPECT_EQ(Text(targets.at("shop-4"), "deploy_final_state"), "failed");
  EXPECT_EQ(Text(targets.at("shop-5"), "deploy_final_state"), "verified");
  EXPECT_EQ(Text(targets.at("shop-6"), "state"), "not_started");

  const auto deploys = TriggersPerStore("deploy", "r2");
  EXPECT_EQ(deploys,
            (std::map<std::string, int>{{"shop-1", 1}, {"shop-2", 1}, {"shop-3", 1}, {"shop-4", 1}, {"shop-5", 1}}))
      << TriggerList();
  EXPECT_EQ(TriggersPerStore("rollback", "r1"), (std::map<std::string, int>{{"shop-4", 1}, {"shop-5", 1}}))
      << TriggerList();
  EXPECT_EQ(Text(Store("shop-3"), "current_release"), "r2");
  EXPECT_EQ(Text(Store("shop-5"), "current_release"), "r1");
}

// d. An approval gate between waves, a pause in the middle of a wave, resume; approvals by
// the creator are refused (403), by another principal accepted.
TEST_F(RolloutTest, ApprovalGatesNeedAnotherPrincipalAndAPauseStartsNothingNew) {
  ASSERT_NO_FATAL_FAILURE(Fleet(4, false));
  // Waves: [shop-1] [shop-2 shop-3] [shop-4]; one run at a time.
  pipeline_.Script("shop-2", {Step::kHold});
  const auto id = Create(
      Spec(R"({"canary_size": 1, "wave_size": 2})", 1, R"({"max_failures": 0})", R"(, "between_waves": "approval")"));
  ASSERT_FALSE(id.empty());
  const auto bob = BobToken();

  // The canary needs no approval; the wave after it does.
  ASSERT_TRUE(WaitState(id, "awaiting_approval", 40s)) << Describe(id);
  auto gate = Rollout(id);
  EXPECT_EQ(Number(gate, "awaiting_wave"), 1) << json::serialize(gate);
  EXPECT_EQ(WaitingFor(gate), "approval") << json::serialize(gate);
  EXPECT_EQ(Count(gate, "succeeded"), 1);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(Triggers("deploy").size(), 1u) << "nothing before the approval\n" << TriggerList();

  ExpectProblem(Command(id, "approve", R"({"wave": 1})"), 403, "forbidden");  // admin created it
  ExpectProblem(Command(id, "approve", R"({"wave": 2})", bob), 409, "conflict");
  ExpectProblem(Command(id, "resume"), 409, "conflict");
  auto approved = Command(id, "approve", R"({"wave": 1})", bob);
  ASSERT_EQ(approved.status, 202) << approved.body;
  auto answer = Json(approved);
  EXPECT_EQ(Text(answer.at("command").as_object(), "kind"), "approve_wave") << approved.body;

  // shop-2 is deployed and held; pause; it ends well while paused, and shop-3 is not started.
  ASSERT_TRUE(WaitFor([&] { return pipeline_.Holding("shop-2"); }, 20s)) << Describe(id);
  auto paused = Command(id, "pause");
  ASSERT_EQ(paused.status, 202) << paused.body;
  ASSERT_TRUE(WaitState(id, "paused", 10s)) << Describe(id);
  EXPECT_EQ(Text(Rollout(id), "paused_from"), "running");
  ExpectProblem(Command(id, "pause"), 409, "conflict");
  pipeline_.Release("shop-2");
  ASSERT_TRUE(WaitFor([&] { return Text(TargetsByStore(id)["shop-2"], "state") == "succeeded"; }, 20s)) << Describe(id);
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(Text(Rollout(id), "state"), "paused");
  EXPECT_EQ(TriggersPerStore("deploy").count("shop-3"), 0u) << "triggered while paused\n" << TriggerList();
  EXPECT_EQ(Text(TargetsByStore(id)["shop-3"], "state"), "waiting");

  auto resumed = Command(id, "resume");
  ASSERT_EQ(resumed.status, 202) << resumed.body;
  ASSERT_TRUE(WaitState(id, "awaiting_approval", 30s)) << Describe(id);
  EXPECT_EQ(Number(Rollout(id), "awaiting_wave"), 2);
  EXPECT_EQ(TriggersPerStore("deploy").count("shop-3"), 1u) << TriggerList();
  auto self = Command(id, "approve", R"({"wave": 2})");
  ExpectProblem(self, 403, "forbidden");
  EXPECT_NE(Text(Json(self), "detail").find("other than its creator"), std::string::npos) << self.body;
  ASSERT_EQ(Command(id, "approve", R"({"wave": 2})", bob).status, 202);
  ASSERT_TRUE(WaitState(id, "succeeded", 30s)) << Describe(id);
  ExpectAllSucceeded(id, {"shop-1", "shop-2", "shop-3", "shop-4"});
  for (const auto& [store, n] : TriggersPerStore("deploy")) EXPECT_EQ(n, 1) << store;
  ExpectWavesInOrder(id, 1);
  ExpectProblem(Command(id, "abort", R"({"rollback": false})"), 409, "conflict");
  ExpectProblem(Command("rol_00000000000000000000000000000000", "pause"), 404, "not-found");
}

// d'. Abort with rollback in the middle of a wave: the in-flight deploys finish, then the
// current wave is rolled back to r1; the canary keeps r2; the rollout ends aborted.
TEST_F(RolloutTest, AnAbortWithRollbackRollsBackTheCurrentWave) {
  ASSERT_NO_FATAL_FAILURE(Fleet(4, true));
  // Waves: [shop-1] [shop-2 shop-3 shop-4].
  for (const char* store : {"shop-2", "shop-3", "shop-4"}) pipeline_.Script(store, {Step::kHold});
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 3})", 3));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor(
      [&] { return pipeline_.Holding("shop-2") && pipeline_.Holding("shop-3") && pipeline_.Holding("shop-4"); }, 40s))
      << Describe(id);
  auto aborted = Command(id, "abort", R"({"rollback": true})");
  ASSERT_EQ(aborted.status, 202) << aborted.body;
  ASSERT_TRUE(WaitState(id, "aborting", 10s)) << Describe(id);
  EXPECT_EQ(Text(Rollout(id), "ending"), "abort");
  ExpectProblem(Command(id, "pause"), 409, "conflict");
  // One of them fails at the provider; it is rolled back all the same (its deploy started).
  pipeline_.Release("shop-2");
  pipeline_.Release("shop-3", Step::kFail);
  pipeline_.Release("shop-4");
  ASSERT_TRUE(WaitState(id, "aborted", 60s)) << Describe(id);
  const auto done = Rollout(id);
  EXPECT_EQ(Text(done, "ending"), "abort");
  EXPECT_EQ(Count(done, "succeeded"), 1) << json::serialize(done);
  EXPECT_EQ(Count(done, "rolled_back"), 3);
  EXPECT_EQ(Count(done, "in_flight"), 0);
  EXPECT_EQ(Number(done, "failed_deploys"), 1);

  const auto targets = TargetsByStore(id);
  EXPECT_EQ(Text(targets.at("shop-1"), "state"), "succeeded");
  EXPECT_EQ(Text(Store("shop-1"), "current_release"), "r2");
  for (const char* store : {"shop-2", "shop-3", "shop-4"}) {
    SCOPED_TRACE(store);
    EXPECT_EQ(Text(targets.at(store), "state"), "rolled_back") << json::serialize(targets.at(store));
    EXPECT_EQ(Text(targets.at(store), "rollback_final_state"), "verified");
    EXPECT_EQ(Text(Run(Text(targets.at(store), "rollback_run_id")), "release"), "r1");
    EXPECT_EQ(Text(Store(store), "current_release"), "r1");
  }
  EXPECT_EQ(Text(targets.at("shop-3"), "deploy_final_state"), "failed");
  EXPECT_EQ(TriggersPerStore("rollback", "r1"),
            (std::map<std::string, int>{{"shop-2", 1}, {"shop-3", 1}, {"shop-4", 1}}))
      << TriggerList();
  for (const auto& [store, n] : TriggersPerStore("deploy")) EXPECT_EQ(n, 1) << store;
  ExpectProblem(Command(id, "abort", "{}"), 409, "conflict");
}

// e. The server stops (SIGTERM) while the canary's deploy is in flight and is killed
// (SIGKILL) while wave 1's are; each time it restarts on the same database and the rollout
// goes on to succeed, and no store is ever triggered twice.
TEST_F(RolloutTest, RestartedOrKilledMidRolloutItContinuesAndTriggersNoStoreTwice) {
  ASSERT_NO_FATAL_FAILURE(Fleet(5, false));
  // Waves: [shop-1] [shop-2 shop-3] [shop-4 shop-5].
  pipeline_.Script("shop-1", {Step::kHold});
  pipeline_.Script("shop-2", {Step::kHold});
  pipeline_.Script("shop-3", {Step::kHold});
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 2})", 2));
  ASSERT_FALSE(id.empty());

  ASSERT_TRUE(WaitFor([&] { return pipeline_.Holding("shop-1"); }, 20s)) << Describe(id);
  ASSERT_NO_FATAL_FAILURE(Restart(false));
  EXPECT_EQ(Text(Rollout(id), "state"), "running") << Describe(id);
  pipeline_.Release("shop-1");

  ASSERT_TRUE(WaitFor([&] { return pipeline_.Holding("shop-2") && pipeline_.Holding("shop-3"); }, 30s))
      << Describe(id) << server_->Logs();
  ASSERT_NO_FATAL_FAILURE(Restart(true));
  pipeline_.Release("shop-2");
  pipeline_.Release("shop-3");

  ASSERT_TRUE(WaitState(id, "succeeded", 60s)) << Describe(id) << earlier_logs_ << server_->Logs();
  ExpectAllSucceeded(id, {"shop-1", "shop-2", "shop-3", "shop-4", "shop-5"});
  const auto per_store = TriggersPerStore("deploy");
  EXPECT_EQ(per_store.size(), 5u) << TriggerList();
  for (const auto& [store, n] : per_store) EXPECT_EQ(n, 1) << store << " triggered " << n << " times";
  const auto runs = Items(Call("GET", "/v1/runs?rollout=" + id + "&limit=100"));
  EXPECT_EQ(runs.size(), 5u) << "one run per store: " << json::serialize(runs);
  ExpectWavesInOrder(id, 2);
}

// d''. A timed pause between waves: the rollout waits until resume_at (waiting_for pause);
// an operator's pause holds it past that time; resume then goes on at once.
TEST_F(RolloutTest, ATimedPauseBetweenWavesWaitsAndAnOperatorPauseOutlastsIt) {
  ASSERT_NO_FATAL_FAILURE(Fleet(3, false));
  // Waves: [shop-1] [shop-2 shop-3]; 3 s between them.
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 2})", 2, R"({"max_failures": 0})",
                              R"(, "between_waves": "pause", "pause_s": 3)"));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitState(id, "waiting_between_waves", 30s)) << Describe(id);
  const auto waiting = Rollout(id);
  EXPECT_EQ(WaitingFor(waiting), "pause") << json::serialize(waiting);
  const std::int64_t resume_at = ParseTimeMs(waiting.at("resume_at"));
  EXPECT_GT(resume_at, NowMs()) << json::serialize(waiting);
  EXPECT_EQ(Text(waiting.at("waiting_for").as_object(), "until"), Text(waiting, "resume_at"));
  ASSERT_EQ(Command(id, "pause").status, 202);
  ASSERT_TRUE(WaitState(id, "paused", 10s)) << Describe(id);
  EXPECT_EQ(Text(Rollout(id), "paused_from"), "waiting_between_waves");
  // Past resume_at, still paused, nothing of wave 1 triggered.
  while (NowMs() < resume_at + 1500) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(Text(Rollout(id), "state"), "paused");
  EXPECT_EQ(Triggers("deploy").size(), 1u) << TriggerList();
  ASSERT_EQ(Command(id, "resume").status, 202);
  ASSERT_TRUE(WaitState(id, "succeeded", 30s)) << Describe(id);
  ExpectAllSucceeded(id, {"shop-1", "shop-2", "shop-3"});
  ExpectWavesInOrder(id, 2);
  const auto deploys = Triggers("deploy");
  ASSERT_EQ(deploys.size(), 3u) << TriggerList();
  const auto wave1 = std::min(deploys[1].at_ms, deploys[2].at_ms);
  EXPECT_GE(wave1, resume_at) << "wave 1 started before its pause ended";
}

// f. A freeze of staging: a rollout created while the window is closed starts nothing and
// skips nothing; it says it waits for the window. A reload without the freeze lets it go.
TEST_F(RolloutTest, AClosedWindowHoldsTheRolloutUntilItOpens) {
  ASSERT_NO_FATAL_FAILURE(Fleet(3, false));
  ASSERT_NO_FATAL_FAILURE(Reload(Policy(R"(windows:
  - kind: deny
    environments: [staging]
    schedule: "* * * * *"
    duration: 1m
    description: rollout test freeze
)")));
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 2})", 2));
  ASSERT_FALSE(id.empty());
  std::string seen;
  ASSERT_TRUE(WaitFor(
      [&] {
        seen = WaitingFor(Rollout(id));
        return seen == "window_closed";
      },
      10s))
      << Describe(id);
  std::this_thread::sleep_for(2500ms);
  const auto held = Rollout(id);
  EXPECT_EQ(WaitingFor(held), "window_closed") << json::serialize(held);
  if (const auto* w = held.if_contains("waiting_for"); w != nullptr && w->is_object()) {
    EXPECT_EQ(Text(w->as_object(), "until"), "null") << "an every-minute freeze never ends";
  }
  EXPECT_TRUE(Text(held, "state") == "running" || Text(held, "state") == "pending") << json::serialize(held);
  EXPECT_EQ(Count(held, "waiting"), 3) << json::serialize(held);
  for (const auto& [store, t] : TargetsByStore(id)) {
    EXPECT_EQ(Text(t, "state"), "waiting") << store;
    EXPECT_EQ(Text(t, "skip_reason"), "null") << store;
  }
  EXPECT_EQ(ci_.count(), baseline_) << "nothing triggered while closed\n" << TriggerList();

  ASSERT_NO_FATAL_FAILURE(Reload(Policy("")));
  ASSERT_TRUE(WaitState(id, "succeeded", 40s)) << Describe(id);
  ExpectAllSucceeded(id, {"shop-1", "shop-2", "shop-3"});
  EXPECT_EQ(WaitingFor(Rollout(id)), "");
  for (const auto& [store, n] : TriggersPerStore("deploy")) EXPECT_EQ(n, 1) << store;
}

// f'. A freeze that begins while the canary is in flight: the canary's run finishes, its
// failure halts the rollout, and the rollback is not held back by the freeze (remediation
// is not a deploy); nothing else starts.
TEST_F(RolloutTest, AFreezeDoesNotHoldBackTheRollbackOfAHaltedWave) {
  ASSERT_NO_FATAL_FAILURE(Fleet(3, true));
  pipeline_.Script("shop-1", {Step::kHold});
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 2})", 2));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return pipeline_.Holding("shop-1"); }, 20s)) << Describe(id);
  ASSERT_NO_FATAL_FAILURE(Reload(Policy(R"(windows:
  - kind: deny
    environments: [staging]
    schedule: "* * * * *"
    duration: 1m
    description: rollout test freeze
)")));
  pipeline_.Release("shop-1", Step::kFail);
  ASSERT_TRUE(WaitState(id, "failed", 30s)) << Describe(id);
  const auto canary = TargetsByStore(id).at("shop-1");
  EXPECT_EQ(Text(canary, "state"), "rolled_back") << json::serialize(canary);
  EXPECT_EQ(Text(canary, "rollback_final_state"), "verified");
  EXPECT_EQ(TriggersPerStore("rollback", "r1"), (std::map<std::string, int>{{"shop-1", 1}})) << TriggerList();
  EXPECT_EQ(TriggersPerStore("deploy"), (std::map<std::string, int>{{"shop-1", 1}})) << TriggerList();
}

// g. A store whose agent stopped (offline) and one never enrolled are skipped at their turn
// (agent_offline), not waited for and not failures: the rollout succeeds.
TEST_F(RolloutTest, StoresWithoutALiveAgentAreSkippedAndTheRolloutSucceeds) {
  ASSERT_NO_FATAL_FAILURE(Fleet(4, false, {"shop-4"}));
  agents_.at("shop-3")->Stop();
  ASSERT_TRUE(WaitFor([&] { return Text(Health("shop-3"), "availability") == "offline"; }, 10s))
      << json::serialize(Health("shop-3"));
  EXPECT_EQ(Text(Health("shop-4"), "availability"), "never_seen");
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 3})", 3));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitState(id, "succeeded", 40s)) << Describe(id);
  const auto done = Rollout(id);
  EXPECT_EQ(Count(done, "succeeded"), 2) << json::serialize(done);
  EXPECT_EQ(Count(done, "skipped"), 2);
  EXPECT_EQ(Count(done, "failed"), 0);
  EXPECT_EQ(Number(done, "failed_deploys"), 0);
  const auto targets = TargetsByStore(id);
  for (const char* store : {"shop-3", "shop-4"}) {
    EXPECT_EQ(Text(targets.at(store), "state"), "skipped") << store;
    EXPECT_EQ(Text(targets.at(store), "skip_reason"), "agent_offline") << store;
    EXPECT_EQ(Text(targets.at(store), "deploy_run_id"), "null") << store;
  }
  ExpectAllSucceeded(id, {"shop-1", "shop-2"});
  EXPECT_EQ(TriggersPerStore("deploy"), (std::map<std::string, int>{{"shop-1", 1}, {"shop-2", 1}})) << TriggerList();
  const auto filtered = Items(Call("GET", "/v1/rollouts/" + id + "/targets?state=skipped"));
  EXPECT_EQ(filtered.size(), 2u) << json::serialize(filtered);

  // Running the release again: the stores already there are skipped (already_at_release),
  // the offline ones again (agent_offline); nothing is deployed twice.
  const auto before = ci_.count();
  const auto again = Create(Spec(R"({"canary_size": 1, "wave_size": 3})", 3));
  ASSERT_FALSE(again.empty());
  ASSERT_TRUE(WaitState(again, "succeeded", 30s)) << Describe(again);
  const auto second = TargetsByStore(again);
  for (const char* store : {"shop-1", "shop-2"}) {
    EXPECT_EQ(Text(second.at(store), "skip_reason"), "already_at_release") << json::serialize(second.at(store));
  }
  for (const char* store : {"shop-3", "shop-4"}) {
    EXPECT_EQ(Text(second.at(store), "skip_reason"), "agent_offline") << json::serialize(second.at(store));
  }
  EXPECT_EQ(Count(Rollout(again), "skipped"), 4);
  EXPECT_EQ(ci_.count(), before) << TriggerList();
}

// h. Provider pacing: deploys and rollbacks go to a provider that takes 5 triggers a minute
// (a bucket of 5, then one every 12 s). The 6th store waits for a token instead of failing.
class RolloutPacingTest : public RolloutTest {
 protected:
  int PacedTriggersPerMinute() const override { return 5; }
};

TEST_F(RolloutPacingTest, TriggersWaitForTheProvidersTokensAndTheRolloutStillSucceeds) {
  ASSERT_NO_FATAL_FAILURE(Fleet(6, false));
  // Waves: [shop-1] [shop-2 .. shop-6], all of wave 1 at once if tokens allowed it.
  const auto id = Create(Spec(R"({"canary_size": 1, "wave_size": 5})", 5));
  ASSERT_FALSE(id.empty());
  std::set<std::string> reasons;
  std::int64_t first_trigger = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto r = Rollout(id);
        if (const auto reason = WaitingFor(r); !reason.empty()) reasons.insert(reason);
        const auto deploys = Triggers("deploy");
        if (!deploys.empty() && first_trigger == 0) first_trigger = deploys.front().at_ms;
        // Within 10 s of the first trigger the bucket allows 5 (a 6th token is 12 s away).
        if (first_trigger > 0 && NowMs() - first_trigger < 10'000) {
          EXPECT_LE(deploys.size(), 5u) << TriggerList();
        }
        const auto state = Text(r, "state");
        return state == "succeeded" || state == "failed" || state == "aborted";
      },
      60s))
      << Describe(id);
  const auto done = Rollout(id);
  EXPECT_EQ(Text(done, "state"), "succeeded") << Describe(id);
  EXPECT_EQ(Count(done, "succeeded"), 6);
  EXPECT_EQ(Count(done, "skipped"), 0) << "pacing never skips";
  EXPECT_TRUE(reasons.contains("provider_pacing")) << "waiting_for never said provider_pacing";
  const auto deploys = Triggers("deploy");
  ASSERT_EQ(deploys.size(), 6u) << TriggerList();
  EXPECT_GE(deploys[5].at_ms - deploys[0].at_ms, 10'000) << "the 6th trigger did not wait for a token\n"
                                                         << TriggerList();
  for (const auto& [store, n] : TriggersPerStore("deploy")) EXPECT_EQ(n, 1) << store;
  ExpectAllSucceeded(id, {"shop-1", "shop-2", "shop-3", "shop-4", "shop-5", "shop-6"});
}

}  // namespace
}  // namespace storeplane::testing
