// The /v1/stores API end to end against the real binary: the happy paths, every error
// status, and proof that rejected input changes nothing stored.
#include <thread>

#include "tests/integration/integration_fixture.h"

namespace storeplane::testing {
namespace {

using StoresApi = ServerTest;

TEST_F(StoresApi, RegisterThenGetReturnsTheSameStore) {
  auto created = Register("acme-shop", "production", "dedicated", R"({"team":"payments","tier":"gold"})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.Header("location"), "/v1/stores/acme-shop");
  EXPECT_EQ(created.Header("etag"), "\"1\"");
  auto body = Json(created);
  EXPECT_EQ(body["id"].as_string(), "acme-shop");
  EXPECT_EQ(body["name"].as_string(), "acme-shop");
  EXPECT_EQ(body["environment"].as_string(), "production");
  EXPECT_EQ(body["isolation_mode"].as_string(), "dedicated");
  EXPECT_EQ(body["state"].as_string(), "registered");
  EXPECT_EQ(body["labels"].as_object().at("team").as_string(), "payments");
  EXPECT_TRUE(body["current_release"].is_null());
  EXPECT_EQ(body["version"].to_number<int>(), 1);

  auto got = Call("GET", "/v1/stores/acme-shop");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.Header("etag"), "\"1\"");
  EXPECT_EQ(Json(got), body);
}

TEST_F(StoresApi, ListFiltersByEnvironmentIsolationStateAndSelector) {
  ASSERT_EQ(Register("p1", "production", "shared", R"({"region":"eu","tier":"gold"})").status, 201);
  ASSERT_EQ(Register("p2", "production", "isolated", R"({"region":"us"})").status, 201);
  ASSERT_EQ(Register("s1", "staging", "shared", R"({"region":"eu","canary":"yes"})").status, 201);
  ASSERT_EQ(Register("d1", "development", "dedicated", "{}").status, 201);

  auto ids = [&](const std::string& query) {
    auto resp = Call("GET", "/v1/stores" + query);
    EXPECT_EQ(resp.status, 200) << query << ": " << resp.body;
    std::vector<std::string> out;
    const auto body = Json(resp);
    for (const auto& item : body.at("items").as_array()) out.emplace_back(item.as_object().at("id").as_string());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(""), (V{"d1", "p1", "p2", "s1"}));
  EXPECT_EQ(ids("?environment=production"), (V{"p1", "p2"}));
  EXPECT_EQ(ids("?isolation_mode=shared"), (V{"p1", "s1"}));
  EXPECT_EQ(ids("?state=registered&environment=staging"), (V{"s1"}));
  EXPECT_EQ(ids("?state=active"), V{});
  EXPECT_EQ(ids("?selector=region%3Deu"), (V{"p1", "s1"}));
  EXPECT_EQ(ids("?selector=region!%3Deu"), (V{"d1", "p2"}));
  EXPECT_EQ(ids("?selector=region%20in%20(us,eu),!canary"), (V{"p1", "p2"}));
  EXPECT_EQ(ids("?selector=region+notin+(eu)"), (V{"d1", "p2"}));
  EXPECT_EQ(ids("?selector=tier"), (V{"p1"}));
  EXPECT_EQ(ids("?selector=region%3Deu&environment=staging"), (V{"s1"}));
}

TEST_F(StoresApi, CursorPaginationVisitsEveryStoreOnce) {
  std::vector<std::string> expected;
  for (int i = 0; i < 23; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "store-%02d", i);
    expected.emplace_back(id);
    ASSERT_EQ(Register(id, "staging", "shared", i % 2 ? R"({"odd":"true"})" : "{}").status, 201);
  }
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (;;) {
    auto resp = Call("GET", "/v1/stores?limit=5" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(resp.status, 200) << resp.body;
    auto body = Json(resp);
    ++pages;
    for (const auto& item : body["items"].as_array()) seen.emplace_back(item.as_object().at("id").as_string());
    if (body["next_cursor"].is_null()) break;
    cursor = std::string(body["next_cursor"].as_string());
  }
  EXPECT_EQ(pages, 5);
  EXPECT_EQ(seen, expected);

  // A filtered walk returns exactly the matching stores.
  seen.clear();
  cursor.clear();
  for (;;) {
    auto resp = Call("GET", "/v1/stores?limit=4&selector=odd" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(resp.status, 200) << resp.body;
    auto body = Json(resp);
    for (const auto& item : body["items"].as_array()) seen.emplace_back(item.as_object().at("id").as_string());
    if (body["next_cursor"].is_null()) break;
    cursor = std::string(body["next_cursor"].as_string());
  }
  EXPECT_EQ(seen.size(), 11u);
}

TEST_F(StoresApi, PatchWithIfMatchUpdatesNameAndLabels) {
  ASSERT_EQ(Register("shop").status, 201);
  auto resp = Patch("shop", R"({"name":"The Shop","labels":{"team":"web"}})", "\"1\"");
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(resp.Header("etag"), "\"2\"");
  auto body = Json(resp);
  EXPECT_EQ(body["name"].as_string(), "The Shop");
  EXPECT_EQ(body["labels"].as_object().at("team").as_string(), "web");
  EXPECT_EQ(body["version"].to_number<int>(), 2);
  EXPECT_EQ(Json(Call("GET", "/v1/stores/shop")), body);

  // Only labels: the name stays.
  resp = Patch("shop", R"({"labels":{}})", "\"2\"");
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(Json(resp)["name"].as_string(), "The Shop");
  EXPECT_TRUE(Json(resp)["labels"].as_object().empty());
}

TEST_F(StoresApi, StaleIfMatchIsRejectedAndNothingChanges) {
  ASSERT_EQ(Register("shop").status, 201);
  ASSERT_EQ(Patch("shop", R"({"name":"first"})", "\"1\"").status, 200);
  const auto before = Snapshot();
  ExpectProblem(Patch("shop", R"({"name":"second"})", "\"1\""), 412, "precondition-failed");
  ExpectProblem(Patch("shop", R"({"name":"second"})", ""), 428, "precondition-required");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(StoresApi, DuplicateIdIsAConflict) {
  ASSERT_EQ(Register("shop", "staging").status, 201);
  const auto before = Snapshot();
  ExpectProblem(Register("shop", "production"), 409, "already-exists");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(StoresApi, EveryMalformedOrInvalidRegistrationIsA4xxAndStoresNothing) {
  ASSERT_EQ(Register("existing").status, 201);
  const auto before = Snapshot();
  const std::pair<std::string, std::pair<long, std::string>> cases[] = {
      {"{", {400, "malformed-request"}},
      {"", {400, "malformed-request"}},
      {"[1,2]", {422, "validation-failed"}},
      {"\"text\"", {422, "validation-failed"}},
      {"{\"id\":\"caf\xc3\x28\",\"environment\":\"staging\",\"isolation_mode\":\"shared\"}",
       {400, "malformed-request"}},
      {R"({"id":"ok","environment":"staging","isolation_mode":"shared","extra":1})", {422, "validation-failed"}},
      {R"({"id":7,"environment":"staging","isolation_mode":"shared"})", {422, "validation-failed"}},
      {R"({"id":"ok","environment":"staging","isolation_mode":"shared","labels":{"a":1}})", {422, "validation-failed"}},
      {R"({"id":"ok","environment":"staging","isolation_mode":"shared","labels":[]})", {422, "validation-failed"}},
      {R"({"id":"Bad_Id","environment":"staging","isolation_mode":"shared"})", {422, "validation-failed"}},
      {R"({"id":"-bad","environment":"staging","isolation_mode":"shared"})", {422, "validation-failed"}},
      {R"({"id":"ok","environment":"moon","isolation_mode":"shared"})", {422, "validation-failed"}},
      {R"({"id":"ok","environment":"staging","isolation_mode":"loose"})", {422, "validation-failed"}},
      {R"({"environment":"staging","isolation_mode":"shared"})", {422, "validation-failed"}},
      {R"({"id":"ok","environment":"staging","isolation_mode":"shared","labels":{"db_password":"x"}})",
       {422, "validation-failed"}},
      {R"({"id":"ok","environment":"staging","isolation_mode":"shared","labels":{"note":"AKIAIOSFODNN7EXAMPLE"}})",
       {422, "validation-failed"}},
      {R"({"id":"ok","environment":"staging","isolation_mode":"shared","labels":{"k":"Zx9Qw2Lm8Rt5Yp3Vb7Nc1Kd4"}})",
       {422, "validation-failed"}},
      {R"({"id":"existing","environment":"staging","isolation_mode":"shared"})", {409, "already-exists"}},
  };
  for (const auto& [body, expected] : cases) {
    SCOPED_TRACE(body);
    ExpectProblem(Call("POST", "/v1/stores", body, {{"Content-Type", "application/json"}}), expected.first,
                  expected.second);
  }
  EXPECT_EQ(Snapshot(), before);
  ExpectProblem(Call("GET", "/v1/stores/ok"), 404, "not-found");
}

TEST_F(StoresApi, SecretLikeLabelNamesTheFieldAndReason) {
  auto resp = Register("shop", "staging", "shared", R"({"api_token":"abc"})");
  ExpectProblem(resp, 422, "validation-failed");
  auto body = Json(resp);
  EXPECT_EQ(body["field"].as_string(), "labels.api_token");
  EXPECT_NE(std::string(body["detail"].as_string()).find("secret"), std::string::npos) << resp.body;
}

TEST_F(StoresApi, WrongMediaTypeOversizedBodyAndBadQueryAreRejected) {
  const auto before = Snapshot();
  const std::string good = R"({"id":"ok","environment":"staging","isolation_mode":"shared"})";
  ExpectProblem(Call("POST", "/v1/stores", good, {{"Content-Type", "text/plain"}}), 415, "unsupported-media-type");
  ExpectProblem(Call("POST", "/v1/stores", good), 415, "unsupported-media-type");
  const std::string huge =
      R"({"id":"ok","environment":"staging","isolation_mode":"shared","name":")" + std::string(2 << 20, 'x') + "\"}";
  ExpectProblem(Call("POST", "/v1/stores", huge, {{"Content-Type", "application/json"}}), 413, "payload-too-large");
  ExpectProblem(Call("GET", "/v1/stores?limit=0"), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/stores?limit=abc"), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/stores?selector=a%20in%20("), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/stores?cursor=zzz"), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/stores?colour=red"), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/stores?state=sleeping"), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/nothing-here"), 404, "not-found");
  ExpectProblem(Call("DELETE", "/v1/stores"), 405, "method-not-allowed");
  ExpectProblem(Call("GET", "/v1/stores", "", {{"X-Big", std::string(20000, 'h')}}), 431,
                "request-header-fields-too-large");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(StoresApi, PatchRejectsBadInputAndKeepsTheStore) {
  ASSERT_EQ(Register("shop", "staging", "shared", R"({"team":"a"})").status, 201);
  const auto before = Snapshot();
  ExpectProblem(Patch("shop", R"({"environment":"production"})", "\"1\""), 422, "validation-failed");
  ExpectProblem(Patch("shop", R"({"isolation_mode":"shared"})", "\"1\""), 422, "validation-failed");
  ExpectProblem(Patch("shop", R"({"labels":{"private_key":"x"}})", "\"1\""), 422, "validation-failed");
  ExpectProblem(Patch("shop", R"({"name":""})", "\"1\""), 422, "validation-failed");
  ExpectProblem(Patch("shop", R"({"name":null})", "\"1\""), 422, "validation-failed");
  ExpectProblem(Patch("shop", "{oops", "\"1\""), 400, "malformed-request");
  ExpectProblem(Patch("nope", R"({"name":"x"})", "\"1\""), 404, "not-found");
  ExpectProblem(Call("PATCH", "/v1/stores/shop", R"({"name":"x"})", {{"If-Match", "\"1\""}}), 415,
                "unsupported-media-type");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(StoresApi, AuthenticationIsRequiredOnV1) {
  ExpectProblem(Call("GET", "/v1/stores", "", {}, false), 401, "unauthenticated");
  ExpectProblem(Call("GET", "/v1/stores", "", {{"Authorization", "Bearer spt_not-a-real-token"}}, false), 401,
                "unauthenticated");
  ExpectProblem(Call("GET", "/v1/stores", "", {{"Authorization", "Basic YWRtaW46YWRtaW4="}}, false), 401,
                "unauthenticated");
  auto resp = Call("GET", "/v1/stores", "", {}, false);
  EXPECT_NE(resp.Header("www-authenticate").find("Bearer"), std::string::npos);
  // Health endpoints need no token.
  EXPECT_EQ(Call("GET", "/healthz", "", {}, false).status, 200);
  EXPECT_EQ(Call("GET", "/readyz", "", {}, false).status, 200);
  auto who = Call("GET", "/v1/whoami");
  ASSERT_EQ(who.status, 200);
  EXPECT_EQ(Json(who)["id"].as_string(), "admin");
}

TEST_F(StoresApi, TheTokenNeverAppearsInLogs) {
  ASSERT_EQ(Register("shop").status, 201);
  Call("GET", "/v1/stores", "", {{"Authorization", "Bearer spt_wrong-token-value-1234"}}, false);
  const auto logs = server_->Logs();
  EXPECT_EQ(logs.find(token_), std::string::npos);
  EXPECT_EQ(logs.find("spt_wrong-token-value-1234"), std::string::npos);
  EXPECT_NE(logs.find("\"request_id\""), std::string::npos);
}

TEST_F(StoresApi, RequestIdIsEchoedOrGenerated) {
  auto resp = Call("GET", "/v1/stores", "", {{"X-Request-Id", "trace-abc.123"}});
  EXPECT_EQ(resp.Header("x-request-id"), "trace-abc.123");
  resp = Call("GET", "/v1/stores/missing", "", {{"X-Request-Id", "bad id with spaces"}});
  EXPECT_NE(resp.Header("x-request-id"), "bad id with spaces");
  EXPECT_FALSE(resp.Header("x-request-id").empty());
  EXPECT_EQ(Json(resp)["request_id"].as_string(), resp.Header("x-request-id"));
}

TEST_F(StoresApi, IdempotencyKeyReplaysTheFirstAnswer) {
  const std::string body = R"({"id":"idem","environment":"staging","isolation_mode":"shared"})";
  std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"},
                                                           {"Idempotency-Key", "key-1"}};
  auto first = Call("POST", "/v1/stores", body, headers);
  ASSERT_EQ(first.status, 201) << first.body;
  auto second = Call("POST", "/v1/stores", body, headers);
  EXPECT_EQ(second.status, 201) << second.body;
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(second.Header("idempotent-replayed"), "true");
  EXPECT_EQ(second.Header("etag"), first.Header("etag"));
  const std::string other = R"({"id":"idem2","environment":"staging","isolation_mode":"shared"})";
  ExpectProblem(Call("POST", "/v1/stores", other, headers), 422, "idempotency-key-reused");
  ExpectProblem(Call("GET", "/v1/stores/idem2"), 404, "not-found");
}

TEST_F(StoresApi, ConcurrentWritersAreAllDurable) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      client::HttpClient http;
      for (int i = 0; i < kPerThread; ++i) {
        client::HttpRequest req;
        req.method = "POST";
        req.url = server_->url() + "/v1/stores";
        req.headers = {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}};
        req.body = R"({"id":"c-)" + std::to_string(t) + "-" + std::to_string(i) +
                   R"(","environment":"staging","isolation_mode":"shared"})";
        auto resp = http.Send(req);
        if (resp.ok() && resp->status == 201) ++created;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(created.load(), kThreads * kPerThread);
  StartServer();
  auto body = Json(Call("GET", "/v1/stores?limit=1000"));
  EXPECT_EQ(body["items"].as_array().size(), static_cast<std::size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace storeplane::testing
