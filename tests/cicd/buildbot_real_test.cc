// Against a real Buildbot 3.7 (Debian 12's buildbot and buildbot-worker), started by
// tests/support/buildbot_process.h: the force scheduler called exactly as storeplane's
// adapter calls it, the pipeline's outcome and its signed callback.
//
// What Buildbot 3.7 answers (checked below; the adapter and the callback handler rely on it):
//  - GET /api/v2/builders?name=store -> 200 {"builders": [{"builderid": 1, "name": "store",
//    "masterids": [1], "description": null, "tags": []}], "meta": {"total": 1}}; an unknown
//    name gives 200 with an empty list. Collections are {"<plural>": [...], "meta": {...}}.
//  - POST /api/v2/forceschedulers/storeplane-force, Content-Type: application/json (anything
//    else: 400 {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid content-type
//    (use application/json)"}}), body {"jsonrpc": "2.0", "method": "force", "id": 1,
//    "params": {"builderid": 1, "reason": ..., "storeplane_...": ...}} ->
//    200 {"id": 1, "jsonrpc": "2.0", "result": [<bsid>, {"<builderid>": <brid>}]}.
//    The params are the force scheduler's fields by name; a missing required field gives
//    400 {"error": {"code": -32602, "message": {"<field>": "'<field>' needs to be
//    specified", ...}}} (the message is an object, not a string). An unknown scheduler
//    name gives 500 {"error": {"code": -32603, "message": "AttributeError(...)"}}, an
//    unknown builderid 500 with -32603 "TypeError(...)" (GET /api/v2/forceschedulers/<name>
//    answers 404 for an unknown scheduler, 200 {"forceschedulers": [...]} for a known one).
//    The REST layer overwrites any "owner" param: an anonymous caller's owner is taken from
//    the scheduler's "username" field (empty here), so the buildset's reason reads
//    "A build was forced by '': <reason>".
//  - GET /api/v2/buildrequests?buildsetid=<bsid> -> {"buildrequests": [{"buildrequestid",
//    "buildsetid", "builderid", "claimed", "complete", "results" (null until complete),
//    ...}]}; an unknown buildset gives 200 with an empty list.
//  - GET /api/v2/builds?buildrequestid=<brid> -> {"builds": [{"buildid", "number",
//    "builderid", "buildrequestid", "complete", "results", "state_string", ...}]}.
//  - GET /api/v2/builds/<buildid>/properties -> {"properties": [{"<name>": [<value>,
//    "<source>"], ...}]}; the force scheduler's fields come with source "Force Build Form".
//  - GET /api/v2/buildsets?order=-bsid&limit=N -> {"buildsets": [{"bsid", "reason",
//    "complete", "results", ...}]}, newest first.
//  - results: 0 SUCCESS, 1 WARNINGS, 2 FAILURE, 3 SKIPPED, 4 EXCEPTION, 5 RETRY, 6 CANCELLED.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cicd/provider.h"
#include "core/callback_signature.h"
#include "support/buildbot_process.h"

namespace storeplane::testing {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct HttpAnswer {
  long status = 0;  // 0: transport failure
  std::string body;
};

size_t Collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

HttpAnswer Http(const std::string& method, const std::string& url, const std::string& body = {},
                const std::string& content_type = "application/json") {
  HttpAnswer answer;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return answer;
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  if (method == "POST") {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer.body);
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return answer;
}

json::value Parse(const std::string& text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  return ec ? json::value() : value;
}

// The first element of the REST collection `plural`, or null (points into `answer`).
const json::object* First(const json::value& answer, const char* plural) {
  const auto* object = answer.if_object();
  const auto* list = object == nullptr ? nullptr : object->if_contains(plural);
  if (list == nullptr || !list->is_array() || list->as_array().empty()) return nullptr;
  return list->as_array().front().if_object();
}

std::string RandomHex(size_t bytes) {
  static std::mt19937_64 engine{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes * 2; ++i) out.push_back(digits[engine() % 16]);
  return out;
}

// The seven facts, as storeplane's adapter sends them.
struct Facts {
  std::string correlation_id = "run_" + RandomHex(8);
  std::string store_id = "st_" + RandomHex(4);
  std::string environment = "production";
  std::string isolation_mode = "shared";
  std::string kind = "deploy";
  std::string release;
  std::string callback_url;
};

// A tiny HTTP listener on 127.0.0.1 that records every request and answers 204.
class CallbackListener {
 public:
  struct Request {
    std::string method, target, body;
    std::map<std::string, std::string> headers;  // names lowercased
  };

  CallbackListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CallbackListener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  CallbackListener(const CallbackListener&) = delete;
  CallbackListener& operator=(const CallbackListener&) = delete;

  int port() const { return port_; }

  // Waits until `count` requests arrived (or the timeout); all received so far.
  std::vector<Request> WaitFor(size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return received_.size() >= count; });
    return received_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      Request request;
      if (ReadRequest(client, &request)) {
        static constexpr char kAnswer[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        [[maybe_unused]] auto written = ::write(client, kAnswer, sizeof kAnswer - 1);
        std::lock_guard lock(mutex_);
        received_.push_back(std::move(request));
        cv_.notify_all();
      }
      ::close(client);
    }
  }

  static bool ReadRequest(int client, Request* request) {
    std::string data;
    size_t header_end = std::string::npos;
    size_t content_length = 0;
    const auto deadline = Clock::now() + 5s;
    char buffer[4096];
    while (Clock::now() < deadline) {
      pollfd pfd{client, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      ssize_t n = ::read(client, buffer, sizeof buffer);
      if (n <= 0) return false;
      data.append(buffer, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = data.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        std::istringstream head(data.substr(0, header_end));
        std::string line;
        std::getline(head, line);
        std::istringstream request_line(line);
        request_line >> request->method >> request->target;
        while (std::getline(head, line)) {
          if (!line.empty() && line.back() == '\r') line.pop_back();
          const auto colon = line.find(':');
          if (colon == std::string::npos) continue;
          std::string name = line.substr(0, colon);
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          std::string value = line.substr(colon + 1);
          value.erase(0, value.find_first_not_of(' '));
          request->headers[name] = value;
        }
        if (auto it = request->headers.find("content-length"); it != request->headers.end()) {
          content_length = std::stoul(it->second);
        }
      }
      if (data.size() >= header_end + 4 + content_length) {
        request->body = data.substr(header_end + 4, content_length);
        return true;
      }
    }
    return false;
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Request> received_;
};

class BuildbotRealTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }

  void SetUp() override {
    if (!BuildbotInstalled()) {
      if (BuildbotRequired()) {
        FAIL() << "buildbot and buildbot-worker are not installed (scripts/install-deps.sh installs them) and "
                  "STOREPLANE_REQUIRE_BUILDBOT is set";
      }
      GTEST_SKIP() << "buildbot and buildbot-worker are not installed (scripts/install-deps.sh installs them); "
                      "set STOREPLANE_REQUIRE_BUILDBOT=1 to make this a failure";
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/storeplane-bb-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    if (buildbot_) {
      buildbot_->Stop();
      if (HasFailure()) std::cerr << buildbot_->Logs();
    }
    buildbot_.reset();
    if (!dir_.empty() && !HasFailure()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    } else if (!dir_.empty()) {
      std::cerr << "Buildbot files kept in " << dir_ << "\n";
    }
  }

  // Starts master and worker; the test fails (fatally) when they do not come up.
  void StartBuildbot(const std::string& secret_file = {}, double pipeline_sleep_s = 1.0) {
    BuildbotOptions options;
    options.dir = dir_ + "/bb";
    options.callback_secret_file = secret_file;
    options.pipeline_sleep_s = pipeline_sleep_s;
    buildbot_ = std::make_unique<BuildbotProcess>(options);
    const auto started = Clock::now();
    ASSERT_TRUE(buildbot_->Start()) << buildbot_->error();
    std::cerr << "Buildbot up at " << buildbot_->url() << " in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count() << " ms\n";
  }

  std::int64_t BuilderId(const std::string& name) {
    auto answer = Http("GET", buildbot_->api_url() + "/builders?name=" + name);
    EXPECT_EQ(answer.status, 200) << answer.body;
    const auto parsed = Parse(answer.body);
    const auto* builder = First(parsed, "builders");
    if (builder == nullptr || !builder->contains("builderid")) return -1;
    return builder->at("builderid").to_number<std::int64_t>();
  }

  // The force call exactly as the adapter makes it.
  HttpAnswer Force(std::int64_t builder_id, const Facts& facts, const std::string& scheduler = "storeplane-force") {
    json::object params{{"builderid", builder_id},
                        {"reason", "storeplane " + facts.correlation_id},
                        {"owner", "storeplane"},
                        {"storeplane_correlation_id", facts.correlation_id},
                        {"storeplane_store_id", facts.store_id},
                        {"storeplane_environment", facts.environment},
                        {"storeplane_isolation_mode", facts.isolation_mode},
                        {"storeplane_kind", facts.kind},
                        {"storeplane_release", facts.release},
                        {"storeplane_callback_url", facts.callback_url}};
    json::object body{{"id", 1}, {"jsonrpc", "2.0"}, {"method", "force"}, {"params", std::move(params)}};
    return Http("POST", buildbot_->api_url() + "/forceschedulers/" + scheduler, json::serialize(body));
  }

  // The buildset id of an accepted force call (and checks the answer's shape).
  std::int64_t ForceOk(std::int64_t builder_id, const Facts& facts) {
    auto answer = Force(builder_id, facts);
    EXPECT_EQ(answer.status, 200) << answer.body;
    const auto reply = Parse(answer.body);
    const auto* result = reply.is_object() ? reply.as_object().if_contains("result") : nullptr;
    if (result == nullptr || !result->is_array() || result->as_array().size() != 2) {
      ADD_FAILURE() << "unexpected force answer: " << answer.body;
      return -1;
    }
    const auto& pair = result->as_array();
    EXPECT_TRUE(pair[1].is_object() && pair[1].as_object().contains(std::to_string(builder_id))) << answer.body;
    return pair[0].to_number<std::int64_t>();
  }

  // Waits until the buildset's build request is complete; its build (the newest).
  json::object WaitForBuild(std::int64_t bsid, std::chrono::seconds timeout = 30s) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto requests = Http("GET", buildbot_->api_url() + "/buildrequests?buildsetid=" + std::to_string(bsid));
      const auto parsed = Parse(requests.body);
      const auto* request = First(parsed, "buildrequests");
      if (request != nullptr && request->at("complete").as_bool()) {
        const auto brid = request->at("buildrequestid").to_number<std::int64_t>();
        auto builds = Http("GET", buildbot_->api_url() + "/builds?buildrequestid=" + std::to_string(brid));
        const auto builds_json = Parse(builds.body);
        const auto* build = First(builds_json, "builds");
        if (build == nullptr) {
          ADD_FAILURE() << "build request " << brid << " is complete without a build: " << builds.body;
          return {};
        }
        EXPECT_EQ(build->at("results"), request->at("results"));
        return *build;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "buildset " << bsid << " did not complete within " << timeout.count() << " s";
    return {};
  }

  // name -> value of the build's properties.
  std::map<std::string, json::value> Properties(std::int64_t buildid) {
    std::map<std::string, json::value> out;
    auto answer = Http("GET", buildbot_->api_url() + "/builds/" + std::to_string(buildid) + "/properties");
    EXPECT_EQ(answer.status, 200) << answer.body;
    const auto parsed = Parse(answer.body);
    const auto* properties = First(parsed, "properties");
    if (properties == nullptr) return out;
    for (const auto& [name, pair] : *properties) {
      if (pair.is_array() && pair.as_array().size() == 2) {
        out[std::string(name)] = pair.as_array()[0];
        if (std::string(name).rfind("storeplane_", 0) == 0) {
          EXPECT_EQ(pair.as_array()[1], "Force Build Form") << name;
        }
      }
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<BuildbotProcess> buildbot_;
};

TEST_F(BuildbotRealTest, ForceSchedulerRunsThePipelineWithTheFactsAsProperties) {
  StartBuildbot();
  const auto builder_id = BuilderId("store");
  ASSERT_GT(builder_id, 0);
  EXPECT_EQ(First(Parse(Http("GET", buildbot_->api_url() + "/builders?name=nope").body), "builders"), nullptr);

  Facts good;
  good.release = "2024.06.1";
  good.callback_url = "http://127.0.0.1:9/hooks/cicd/bb";  // no secret configured: never called
  Facts bad;
  bad.release = "bad-2024.06.2";
  bad.kind = "rollback";
  bad.isolation_mode = "dedicated";
  const auto good_bsid = ForceOk(builder_id, good);
  const auto bad_bsid = ForceOk(builder_id, bad);
  ASSERT_GT(good_bsid, 0);
  ASSERT_GT(bad_bsid, good_bsid);

  const auto good_build = WaitForBuild(good_bsid);
  const auto bad_build = WaitForBuild(bad_bsid);
  ASSERT_FALSE(good_build.empty());
  ASSERT_FALSE(bad_build.empty());
  EXPECT_EQ(good_build.at("results"), 0) << json::serialize(good_build);  // SUCCESS
  EXPECT_EQ(bad_build.at("results"), 2) << json::serialize(bad_build);    // FAILURE
  EXPECT_EQ(good_build.at("builderid"), builder_id);

  for (const auto& [facts, build] : {std::pair{good, good_build}, std::pair{bad, bad_build}}) {
    auto properties = Properties(build.at("buildid").to_number<std::int64_t>());
    EXPECT_EQ(properties["storeplane_correlation_id"], facts.correlation_id.c_str());
    EXPECT_EQ(properties["storeplane_store_id"], facts.store_id.c_str());
    EXPECT_EQ(properties["storeplane_environment"], facts.environment.c_str());
    EXPECT_EQ(properties["storeplane_isolation_mode"], facts.isolation_mode.c_str());
    EXPECT_EQ(properties["storeplane_kind"], facts.kind.c_str());
    EXPECT_EQ(properties["storeplane_release"], facts.release.c_str());
    EXPECT_EQ(properties["storeplane_callback_url"], facts.callback_url.c_str());
    EXPECT_EQ(properties["scheduler"], "storeplane-force");
    // The REST layer replaces the "owner" param; the reason is kept as given.
    EXPECT_EQ(properties["owner"], "");
    EXPECT_EQ(properties["reason"], ("storeplane " + facts.correlation_id).c_str());
  }

  // The newest buildsets, with the reason the adapter searches for a correlation id. A
  // buildset's results are written a moment after its build's: wait for them.
  auto buildsets = Http("GET", buildbot_->api_url() + "/buildsets?order=-bsid&limit=30");
  auto buildsets_json = Parse(buildsets.body);
  for (int i = 0; i < 100; ++i) {
    const auto* first = First(buildsets_json, "buildsets");
    if (first != nullptr && first->at("results") != -1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    buildsets = Http("GET", buildbot_->api_url() + "/buildsets?order=-bsid&limit=30");
    buildsets_json = Parse(buildsets.body);
  }
  const auto* newest = First(buildsets_json, "buildsets");
  ASSERT_NE(newest, nullptr) << buildsets.body;
  EXPECT_EQ(newest->at("bsid"), bad_bsid);
  EXPECT_EQ(newest->at("reason"), ("A build was forced by '': storeplane " + bad.correlation_id).c_str());
  EXPECT_EQ(newest->at("results"), 2);

  // An unknown buildset: an empty list, not a 404.
  auto none = Http("GET", buildbot_->api_url() + "/buildrequests?buildsetid=999999");
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(First(Parse(none.body), "buildrequests"), nullptr) << none.body;

  // Refusals: a missing required field (400, -32602, message an object), an unknown
  // scheduler or builder (500, -32603), a wrong content type (400, -32600).
  Facts incomplete;
  incomplete.store_id.clear();
  auto invalid = Force(builder_id, incomplete);
  EXPECT_EQ(invalid.status, 400) << invalid.body;
  const auto invalid_json = Parse(invalid.body);
  ASSERT_TRUE(invalid_json.is_object()) << invalid.body;
  const auto& error = invalid_json.at("error");
  EXPECT_EQ(error.at("code"), -32602);
  EXPECT_TRUE(error.at("message").is_object() && error.at("message").as_object().contains("storeplane_store_id"))
      << invalid.body;

  auto unknown_scheduler = Force(builder_id, good, "no-such-scheduler");
  EXPECT_EQ(unknown_scheduler.status, 500) << unknown_scheduler.body;
  EXPECT_EQ(Parse(unknown_scheduler.body).at("error").at("code"), -32603);
  EXPECT_EQ(Http("GET", buildbot_->api_url() + "/forceschedulers/no-such-scheduler").status, 404);
  EXPECT_EQ(Http("GET", buildbot_->api_url() + "/forceschedulers/storeplane-force").status, 200);

  auto unknown_builder = Force(builder_id + 100, good);
  EXPECT_EQ(unknown_builder.status, 500) << unknown_builder.body;

  auto form = Http("POST", buildbot_->api_url() + "/forceschedulers/storeplane-force", "{}", "text/plain");
  EXPECT_EQ(form.status, 400) << form.body;
  EXPECT_EQ(Parse(form.body).at("error").at("code"), -32600);
}

TEST_F(BuildbotRealTest, PipelinePostsASignedCallback) {
  const std::string secret = "bb-test-secret-" + RandomHex(16);
  const std::string secret_file = dir_ + "/callback.secret";
  std::ofstream(secret_file) << secret << "\n";  // a trailing newline is not part of it
  CallbackListener listener;
  ASSERT_GT(listener.port(), 0);
  StartBuildbot(secret_file, 0.2);
  const auto builder_id = BuilderId("store");
  ASSERT_GT(builder_id, 0);

  const std::string callback_url = "http://127.0.0.1:" + std::to_string(listener.port()) + "/hooks/cicd/bb";
  Facts good;
  good.release = "schema-2024.07.1";
  good.callback_url = callback_url;
  Facts bad;
  bad.release = "bad-2024.07.2";
  bad.callback_url = callback_url;
  const auto good_bsid = ForceOk(builder_id, good);
  const auto bad_bsid = ForceOk(builder_id, bad);
  const std::map<std::string, std::pair<std::int64_t, const Facts*>> expected = {
      {good.correlation_id, {good_bsid, &good}}, {bad.correlation_id, {bad_bsid, &bad}}};

  const auto received = listener.WaitFor(2, 30s);
  ASSERT_EQ(received.size(), 2u);
  std::set<std::string> deliveries;
  for (const auto& request : received) {
    SCOPED_TRACE(request.body);
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/hooks/cicd/bb");
    EXPECT_EQ(request.headers.count("content-type") ? request.headers.at("content-type") : "", "application/json");
    const auto header = [&](std::string_view name) {
      std::string lower(name);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto it = request.headers.find(lower);
      return it == request.headers.end() ? std::string() : it->second;
    };
    const std::string timestamp = header(core::kTimestampHeader);
    const std::string signature = header(core::kSignatureHeader);
    const std::string delivery = header(core::kDeliveryHeader);

    core::SignatureCheck check;
    check.secrets = {secret};
    check.timestamp_header = timestamp;
    check.signature_header = signature;
    check.body = request.body;
    check.now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const auto verified = core::VerifySignature(check);
    EXPECT_TRUE(verified.ok()) << verified.error().message;
    EXPECT_EQ(signature, core::SignPayload(secret, std::stoll(timestamp), request.body));
    check.secrets = {"another-secret"};
    EXPECT_FALSE(core::VerifySignature(check).ok());
    EXPECT_TRUE(core::ValidateDeliveryId(delivery).ok()) << delivery;
    EXPECT_TRUE(deliveries.insert(delivery).second) << "delivery ids repeat: " << delivery;

    const auto body = Parse(request.body);
    ASSERT_TRUE(body.is_object());
    const auto& object = body.as_object();
    const std::string correlation_id(object.at("correlation_id").as_string());
    ASSERT_EQ(expected.count(correlation_id), 1u);
    const auto& [bsid, facts] = expected.at(correlation_id);
    const bool should_fail = facts->release.rfind("bad-", 0) == 0;
    EXPECT_EQ(object.at("status"), should_fail ? "failed" : "succeeded");
    EXPECT_EQ(object.at("external_id"), ("buildset:" + std::to_string(bsid)).c_str());
    const std::string url(object.at("external_url").as_string());
    EXPECT_EQ(url.rfind(buildbot_->url() + "/#/builders/" + std::to_string(builder_id) + "/builds/", 0), 0u) << url;
    EXPECT_EQ(object.at("schema_changed"), facts->release.rfind("schema-", 0) == 0);
  }

  // The builds end as the callbacks said.
  EXPECT_EQ(WaitForBuild(good_bsid).at("results"), 0);
  EXPECT_EQ(WaitForBuild(bad_bsid).at("results"), 2);
}

// storeplane's Buildbot adapter (src/cicd/buildbot_provider.cc) against the real thing.
TEST_F(BuildbotRealTest, AdapterTriggersAndFindsRuns) {
  StartBuildbot();
  cicd::ProviderConfig config;
  config.name = "bb";
  config.type = "buildbot";
  config.base_url = buildbot_->url();
  config.settings = {{"scheduler", "storeplane-force"}, {"builder", "store"}};
  config.timeout_ms = 10'000;
  auto made = cicd::MakeProvider(config);
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto& provider = **made;

  cicd::TriggerRequest good{.correlation_id = "run_" + RandomHex(8),
                            .store_id = "st_" + RandomHex(4),
                            .environment = "production",
                            .isolation_mode = "shared",
                            .kind = "deploy",
                            .release = "2024.08.1",
                            .callback_url = "http://127.0.0.1:9/hooks/cicd/bb"};
  cicd::TriggerRequest bad = good;
  bad.correlation_id = "run_" + RandomHex(8);
  bad.release = "bad-2024.08.2";
  bad.kind = "rollback";

  auto good_trigger = provider.Trigger(good);
  ASSERT_TRUE(good_trigger.ok()) << good_trigger.error().message;
  auto bad_trigger = provider.Trigger(bad);
  ASSERT_TRUE(bad_trigger.ok()) << bad_trigger.error().message;
  EXPECT_EQ(good_trigger->external_id.rfind("buildset:", 0), 0u) << good_trigger->external_id;
  EXPECT_NE(good_trigger->external_id, bad_trigger->external_id);
  EXPECT_EQ(good_trigger->external_url.rfind(buildbot_->url() + "/#/", 0), 0u) << good_trigger->external_url;

  // Find by the external id until the run is over; it passes through queued/running.
  const auto wait_final = [&](const cicd::TriggerRequest& request, const std::string& external_id) {
    cicd::RunStatus last;
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      auto found = provider.Find(request.correlation_id, external_id);
      EXPECT_TRUE(found.ok()) << found.error().message;
      if (!found.ok()) break;
      last = *found;
      EXPECT_NE(last.status, cicd::ProviderRunStatus::kNotFound) << request.correlation_id;
      if (last.status != cicd::ProviderRunStatus::kQueued && last.status != cicd::ProviderRunStatus::kRunning) break;
      std::this_thread::sleep_for(200ms);
    }
    return last;
  };
  const auto good_final = wait_final(good, good_trigger->external_id);
  EXPECT_EQ(good_final.status, cicd::ProviderRunStatus::kSucceeded) << cicd::ToString(good_final.status);
  EXPECT_EQ(good_final.external_id, good_trigger->external_id);
  EXPECT_EQ(good_final.external_url.rfind(buildbot_->url() + "/#/builders/", 0), 0u) << good_final.external_url;
  const auto bad_final = wait_final(bad, bad_trigger->external_id);
  EXPECT_EQ(bad_final.status, cicd::ProviderRunStatus::kFailed) << cicd::ToString(bad_final.status);
  EXPECT_EQ(bad_final.external_id, bad_trigger->external_id);

  // Without an external id: found by the correlation id alone (after a crash, say).
  for (const auto& [request, trigger, expected] : {std::tuple{good, *good_trigger, cicd::ProviderRunStatus::kSucceeded},
                                                   std::tuple{bad, *bad_trigger, cicd::ProviderRunStatus::kFailed}}) {
    auto found = provider.Find(request.correlation_id, "");
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(found->status, expected) << request.correlation_id << ": " << cicd::ToString(found->status);
    EXPECT_EQ(found->external_id, trigger.external_id);
  }

  // A run Buildbot never saw, by correlation id and with a buildset it does not have.
  const std::string unknown = "run_" + RandomHex(8);
  auto missing = provider.Find(unknown, "");
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_EQ(missing->status, cicd::ProviderRunStatus::kNotFound);
  missing = provider.Find(unknown, "buildset:999999");
  ASSERT_TRUE(missing.ok()) << missing.error().message;
  EXPECT_EQ(missing->status, cicd::ProviderRunStatus::kNotFound);

  // Refusals: a required field empty (Buildbot: 400, JSON-RPC -32602) will not get better.
  cicd::TriggerRequest incomplete = good;
  incomplete.correlation_id = "run_" + RandomHex(8);
  incomplete.store_id.clear();
  auto refused = provider.Trigger(incomplete);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument) << refused.error().message;

  // A builder the master does not have: named in the refusal.
  config.settings["builder"] = "no-such-builder";
  auto other = cicd::MakeProvider(config);
  ASSERT_TRUE(other.ok()) << other.error().message;
  auto no_builder = (*other)->Trigger(incomplete);
  ASSERT_FALSE(no_builder.ok());
  EXPECT_EQ(no_builder.error().code, ErrorCode::kInvalidArgument) << no_builder.error().message;

  // A scheduler the master does not have: the force call itself would get a 500 (JSON-RPC
  // -32603, "AttributeError(...)"), which reads as "try again later"; GET
  // /api/v2/forceschedulers/<name> answers 404, a refusal that will not get better.
  config.settings = {{"scheduler", "no-such-scheduler"}, {"builder", "store"}};
  auto wrong_scheduler = cicd::MakeProvider(config);
  ASSERT_TRUE(wrong_scheduler.ok()) << wrong_scheduler.error().message;
  auto no_scheduler = (*wrong_scheduler)->Trigger(incomplete);
  ASSERT_FALSE(no_scheduler.ok());
  EXPECT_EQ(no_scheduler.error().code, ErrorCode::kInvalidArgument) << no_scheduler.error().message;
}

}  // namespace
}  // namespace storeplane::testing
