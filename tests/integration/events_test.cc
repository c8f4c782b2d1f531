// The live event stream (/v1/events) of the real storeplaned: order and ids of the events of
// committed writes, resuming with Last-Event-ID, reset when it cannot, filtering by the
// caller's read scope, refusals, a revoked token ending the stream, the limit on open
// streams, a clean end at drain, and the CLI's `storeplane events`.
#include <cstdio>
#include <fstream>
#include <future>

#include "tests/integration/integration_fixture.h"
#include "tests/support/event_collector.h"

namespace storeplane::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 10s;

bool Is(const CollectedEvent& e, std::string_view type, std::string_view store) {
  return e.type == type && e.data.contains("store_id") && e.data.at("store_id").is_string() &&
         e.data.at("store_id").as_string() == store;
}

std::int64_t SeqOf(const std::string& id) { return std::stoll(id.substr(id.rfind('-') + 1)); }

class EventsTest : public ServerTest {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    token_file_ = dir_->path() + "/admin.token";
    policy_file_ = dir_->path() + "/policy.yaml";
    WritePolicy(R"(version: 1
roles:
  operator:
    allow:
      - actions: [store.read, change.read, principal.whoami, store.register, store.label, event.watch]
  staging-viewer:
    allow:
      - actions: [event.watch]
      - actions: [store.read]
        environments: [staging]
  auditor:
    allow:
      - actions: [audit.read, principal.whoami]
  security-admin:
    allow:
      - actions: [token.*, principal.whoami]
principals:
  admin:
    kind: operator
    roles: [security-admin, operator]
  stage-viewer:
    kind: operator
    roles: [staging-viewer]
  auditor-1:
    kind: operator
    roles: [auditor]
)");
    server_env_ = {"STOREPLANE_EVENTS_KEEPALIVE_MS=1000", "STOREPLANE_EVENTS_MAX_STREAMS=4"};
    StartServer();
    ASSERT_FALSE(token_.empty());
  }

  std::string Url(const std::string& query = "") const {
    return server_->url() + "/v1/events" + (query.empty() ? "" : "?" + query);
  }
};

TEST_F(EventsTest, CommittedChangesArriveInOrderAndResumeAfterALastEventId) {
  EventCollector first(Url("types=store"), token_);
  ASSERT_EQ(first.WaitStatus(kWait), 200);
  ASSERT_EQ(Register("shop-a").status, 201);
  ASSERT_EQ(Patch("shop-a", R"({"labels":{"tier":"gold"}})", "*").status, 200);
  ASSERT_EQ(Register("shop-b").status, 201);
  ASSERT_FALSE(first.WaitFor([](const auto& e) { return Is(e, "store.created", "shop-b"); }, kWait).type.empty());

  const auto seen = first.events();
  ASSERT_EQ(seen.size(), 3U);
  EXPECT_TRUE(Is(seen[0], "store.created", "shop-a"));
  EXPECT_TRUE(Is(seen[1], "store.updated", "shop-a"));
  EXPECT_TRUE(Is(seen[2], "store.created", "shop-b"));
  EXPECT_EQ(seen[1].data.at("store").as_object().at("version").as_int64(), 2);
  EXPECT_EQ(seen[1].data.at("store").as_object().at("labels").as_object().at("tier").as_string(), "gold");
  EXPECT_EQ(seen[1].data.at("action").as_string(), "store.label");
  EXPECT_EQ(seen[0].data.at("id").as_string(), seen[0].id);
  EXPECT_LT(SeqOf(seen[0].id), SeqOf(seen[1].id));
  EXPECT_LT(SeqOf(seen[1].id), SeqOf(seen[2].id));

  // Resuming after the first event replays exactly the two that followed it.
  EventCollector resumed(Url("types=store"), token_, seen[0].id);
  ASSERT_FALSE(resumed.WaitFor([](const auto& e) { return Is(e, "store.created", "shop-b"); }, kWait).type.empty());
  const auto replayed = resumed.events();
  ASSERT_EQ(replayed.size(), 2U);
  EXPECT_EQ(replayed[0].id, seen[1].id);
  EXPECT_EQ(replayed[1].id, seen[2].id);
}

TEST_F(EventsTest, AnIdThatCannotBeResumedStartsWithAReset) {
  EventCollector stale(Url(), token_, "0123456789ab-7");
  auto reset = stale.WaitFor([](const auto& e) { return e.type == "reset"; }, kWait);
  ASSERT_EQ(reset.type, "reset");
  EXPECT_NE(std::string(reset.data.at("reason").as_string()).find("cannot resume"), std::string::npos);

  // After a restart, ids of the previous process are not resumable either (SQLite: the
  // ring is in memory). On PostgreSQL the log is shared and kept: the newest id resumes
  // on the restarted server (as on any other replica), and what follows it arrives.
  EventCollector before(Url("types=store"), token_);
  // The stream is open before the change, or its event would be history to a new stream.
  ASSERT_EQ(before.WaitStatus(kWait), 200);
  ASSERT_EQ(Register("shop-a").status, 201);
  auto created = before.WaitFor([](const auto& e) { return Is(e, "store.created", "shop-a"); }, kWait);
  ASSERT_FALSE(created.id.empty());
  before.Stop();
  StartServer();
  EventCollector after(Url("types=store"), token_, created.id);
  if (!TestBackendIsPostgres()) {
    EXPECT_EQ(after.WaitFor([](const auto& e) { return e.type == "reset"; }, kWait).type, "reset");
    return;
  }
  ASSERT_EQ(after.WaitStatus(kWait), 200);
  ASSERT_EQ(Register("shop-b").status, 201);
  ASSERT_FALSE(after.WaitFor([](const auto& e) { return Is(e, "store.created", "shop-b"); }, kWait).type.empty());
  for (const auto& e : after.events()) EXPECT_NE(e.type, "reset") << "the shared log's id resumes after a restart";
}

TEST_F(EventsTest, EachCallerSeesOnlyEventsOfStoresItMayRead) {
  const std::string viewer = CreateToken("stage-viewer");
  EventCollector scoped(Url(), viewer);
  ASSERT_EQ(scoped.WaitStatus(kWait), 200);
  ASSERT_EQ(Register("prod-a", "production").status, 201);
  ASSERT_EQ(Patch("prod-a", R"({"labels":{"tier":"gold"}})", "*").status, 200);
  ASSERT_EQ(Register("stage-a", "staging").status, 201);
  // stage-a's event comes after prod-a's: once it is here, prod-a's would have been too.
  ASSERT_FALSE(scoped.WaitFor([](const auto& e) { return Is(e, "store.created", "stage-a"); }, kWait).type.empty());
  for (const auto& e : scoped.events()) {
    EXPECT_NE(e.data.at("store_id").as_string(), "prod-a") << e.type;
  }
}

TEST_F(EventsTest, RefusesCallersWithoutEventWatchAndBadQueries) {
  auto refused = CallAs(CreateToken("auditor-1"), "GET", "/v1/events");
  ExpectProblem(refused, 403, "forbidden");
  ExpectProblem(Call("GET", "/v1/events?types=store,bogus"), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/events?store=Not_A_Store"), 422, "validation-failed");
  ExpectProblem(Call("GET", "/v1/events?colour=blue"), 422, "validation-failed");
  EXPECT_EQ(Call("GET", "/v1/events", "", {}, false).status, 401);
}

TEST_F(EventsTest, ARevokedTokenEndsItsStream) {
  auto created = Call("POST", "/v1/tokens", R"({"principal":"stage-viewer"})", {{"Content-Type", "application/json"}});
  ASSERT_EQ(created.status, 201);
  const auto body = Json(created);
  EventCollector stream(Url(), std::string(body.at("token").as_string()));
  ASSERT_EQ(stream.WaitStatus(kWait), 200);
  ASSERT_EQ(Call("DELETE", "/v1/tokens/" + std::string(body.at("id").as_string())).status, 200);
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!stream.ended() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(stream.ended()) << "the stream of a revoked token must end within a keep-alive interval";
}

TEST_F(EventsTest, OpenStreamsAreLimitedAndEndCleanlyAtDrain) {
  std::vector<std::unique_ptr<EventCollector>> streams;
  for (int i = 0; i < 4; ++i) {
    streams.push_back(std::make_unique<EventCollector>(Url(), token_));
    ASSERT_EQ(streams.back()->WaitStatus(kWait), 200);
  }
  auto fifth = Call("GET", "/v1/events");
  ExpectProblem(fifth, 429, "too-many-requests");
  streams.pop_back();  // a slot frees once the server notices the client left
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  long status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    EventCollector again(Url(), token_);
    status = again.WaitStatus(kWait);
    if (status == 200) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 200);

  server_->Stop();  // SIGTERM: every stream ends with its last chunk, not a cut connection
  for (auto& s : streams) {
    const auto until = std::chrono::steady_clock::now() + kWait;
    while (!s->ended() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(s->ended());
    EXPECT_EQ(s->end_reason(), "ok");
  }
}

TEST_F(EventsTest, TheCliFollowsTheStream) {
  const std::string command = std::string(STOREPLANE_CLI_BIN) + " events --types store --count 2 --server " +
                              server_->url() + " --token-file " + token_file_ + " 2>&1";
  auto output = std::async(std::launch::async, [&] {
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return out;
    char buf[512];
    while (fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
    out += "exit=" + std::to_string(WEXITSTATUS(pclose(pipe)));
    return out;
  });
  // The CLI connects in its own time: register until its two events have been printed.
  for (int i = 0; i < 50 && output.wait_for(200ms) != std::future_status::ready; ++i) {
    Register("cli-" + std::to_string(i));
  }
  ASSERT_EQ(output.wait_for(kWait), std::future_status::ready);
  const std::string out = output.get();
  EXPECT_NE(out.find("store.created  cli-"), std::string::npos) << out;
  EXPECT_NE(out.find("exit=0"), std::string::npos) << out;
}

}  // namespace
}  // namespace storeplane::testing
