// Hostile input and overload against the real storeplaned: malformed and garbage
// requests, deep JSON nesting, invalid UTF-8, header floods, slow clients that dribble
// bytes, more concurrent requests than max_in_flight, and floods of unauthenticated
// requests. Each abuse must end in a 4xx/429 or a closed connection, the server must stay
// up, and a well-behaved client running at the same time must keep getting its answers.
//
// Raw POSIX sockets are used where an HTTP client library would refuse to send the bytes
// or would hide how the server ended the connection.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/integration_fixture.h"

namespace storeplane::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------
// Raw socket helpers
// ---------------------------------------------------------------------------------------

// A connected TCP socket to the server, closed on destruction.
class RawConn {
 public:
  explicit RawConn(const std::string& url) {
    // url is http://127.0.0.1:PORT (the fixture listens on loopback IPv4).
    const auto colon = url.rfind(':');
    const auto host_start = url.find("//") + 2;
    const std::string host = url.substr(host_start, colon - host_start);
    const int port = std::stoi(url.substr(colon + 1));
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  RawConn(RawConn&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Sends all of `data` within `timeout`; false if the peer closed or reset, or on timeout.
  bool SendAll(std::string_view data, std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
      pollfd p{fd_, POLLOUT, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // True once the server has closed (EOF) or reset the connection; never blocks. Bytes
  // that arrive meanwhile are kept in received().
  bool PeerClosed() {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return true;
      return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
  }

  const std::string& received() const { return received_; }
  std::string& buffer() { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

// What came back on a raw connection: a parsed response, and whether the server closed.
struct RawResponse {
  int status = 0;  // 0: no (complete) response
  std::string head;
  std::string body;
  bool closed = false;  // EOF or reset seen

  std::string Header(const std::string& name) const {
    std::string lower_head = head;
    for (auto& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string key = "\r\n" + name + ":";
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto at = lower_head.find(key);
    if (at == std::string::npos) return {};
    auto start = at + key.size();
    const auto end = head.find("\r\n", start);
    while (start < end && head[start] == ' ') ++start;
    return head.substr(start, end - start);
  }
};

// Reads one response (status line, headers, Content-Length body) or until the server
// closes the connection or `timeout` passes. Bytes of a following response stay buffered.
RawResponse ReadResponse(RawConn& conn, std::chrono::milliseconds timeout = 5000ms) {
  RawResponse out;
  const auto deadline = Clock::now() + timeout;
  auto& buf = conn.buffer();
  for (;;) {
    const auto head_end = buf.find("\r\n\r\n");
    if (head_end != std::string::npos && buf.starts_with("HTTP/1.")) {
      out.head = buf.substr(0, head_end + 2);
      out.status = std::atoi(buf.c_str() + 9);
      std::size_t length = 0;
      if (const auto cl = out.Header("Content-Length"); !cl.empty()) length = std::stoul(cl);
      if (buf.size() >= head_end + 4 + length) {
        out.body = buf.substr(head_end + 4, length);
        buf.erase(0, head_end + 4 + length);
        return out;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{conn.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char chunk[16384];
    const ssize_t n = ::recv(conn.fd(), chunk, sizeof chunk, MSG_DONTWAIT);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    out.closed = true;
    break;
  }
  out.status = 0;
  out.head.clear();
  return out;
}

// Sends `raw` on a fresh connection and reads what comes back.
RawResponse SendRaw(const std::string& url, std::string_view raw) {
  RawConn conn(url);
  EXPECT_TRUE(conn.connected());
  // A refusal may arrive (and the connection close) before everything is sent.
  conn.SendAll(raw);
  return ReadResponse(conn);
}

std::string Get(const std::string& path, const std::string& token = "") {
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: storeplane\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  return req + "\r\n";
}

// ---------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------

class HostileInput : public ServerTest {
 protected:
  // Restarts the server with `limits` (YAML lines under "limits:") from a config file.
  void RestartWithLimits(const std::string& limits_yaml, const std::string& extra_yaml = "") {
    const std::string path = dir_->path() + "/hostile.yaml";
    std::ofstream(path, std::ios::trunc) << "limits:\n" << limits_yaml << extra_yaml;
    StartServer({"--config", path});
  }

  // The server still answers: health is 200 and an authenticated list works.
  void ExpectServerStillServing() {
    auto health = Call("GET", "/healthz", "", {}, false);
    EXPECT_EQ(health.status, 200) << health.body;
    auto list = Call("GET", "/v1/stores");
    EXPECT_EQ(list.status, 200) << list.body;
    EXPECT_TRUE(Json(list).contains("items")) << list.body;
  }

  // An authenticated request that must succeed within a generous bound while abuse runs.
  void ExpectWellBehavedRequestAnsweredPromptly() {
    const auto start = Clock::now();
    auto resp = Call("GET", "/v1/stores");
    const auto took = Clock::now() - start;
    EXPECT_EQ(resp.status, 200) << resp.body;
    EXPECT_LT(took, 2s) << "a well-behaved request took "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  }
};

// The answer is a 4xx, or there is no answer and the connection is closed; never a 5xx,
// never a success, never a hang.
void ExpectRefusedOrClosed(const RawResponse& r) {
  if (r.status != 0) {
    EXPECT_GE(r.status, 400) << r.head << r.body;
    EXPECT_LT(r.status, 500) << r.head << r.body;
  } else {
    EXPECT_TRUE(r.closed) << "neither an answer nor a closed connection";
  }
}

// ---------------------------------------------------------------------------------------
// Malformed requests and garbage bytes
// ---------------------------------------------------------------------------------------

TEST_F(HostileInput, MalformedRequestsAndGarbageBytesGet400OrCloseAndTheServerStaysUp) {
  RestartWithLimits("  read_timeout_ms: 1000\n");
  const std::string cases[] = {
      "GARBAGE\r\n\r\n",
      std::string("\x00\x01\x02\x03\xff\xfe\xfd\r\n\r\n", 11),
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http but a TLS hello\r\n\r\n",
      "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
      "GET /healthz\r\n\r\n",
      "GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
      "GET /heal\x01thz HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\n: no name\r\n\r\n",
      std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n", 43),
      "POST /v1/stores HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      "POST /v1/stores HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
      "POST /v1/stores HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
      "POST /v1/stores HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
      "POST /v1/stores HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      "POST /v1/stores HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
      "POST /v1/stores HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, identity\r\n\r\n",
      // Ends before the request does: cut off by the read timeout.
      "GET /healthz HTTP/1.1\r\nHost: x\r\n",
  };
  for (const auto& raw : cases) {
    SCOPED_TRACE(::testing::PrintToString(raw));
    ExpectRefusedOrClosed(SendRaw(server_->url(), raw));
  }
  // A request line of a megabyte, and a megabyte of random-looking binary noise.
  ExpectRefusedOrClosed(SendRaw(server_->url(), "GET /" + std::string(1 << 20, 'a') + " HTTP/1.1\r\n\r\n"));
  std::string noise(1 << 20, '\0');
  std::uint32_t x = 12345;
  for (auto& c : noise) {
    x = x * 1664525U + 1013904223U;
    c = static_cast<char>(x >> 24);
  }
  ExpectRefusedOrClosed(SendRaw(server_->url(), noise));
  ExpectServerStillServing();
}

TEST_F(HostileInput, MalformedRequestAfterAGoodOneOnTheSameConnectionIsRefusedAndClosed) {
  RawConn conn(server_->url());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.SendAll(Get("/healthz") + "NOT A REQUEST\r\n\r\n"));
  auto first = ReadResponse(conn);
  EXPECT_EQ(first.status, 200) << first.head;
  auto second = ReadResponse(conn);
  EXPECT_EQ(second.status, 400) << second.head << second.body;
  EXPECT_EQ(second.Header("Content-Type"), "application/problem+json");
  EXPECT_EQ(second.Header("Connection"), "close");
  ExpectServerStillServing();
}

TEST_F(HostileInput, TransferEncodingWithoutFinalChunkedIs400AndItsBodyIsNeverRunAsARequest) {
  // A body a proxy might forward as data, which the server must not read as a request.
  const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const std::string te : {"gzip", "gzip, identity", "chunked, gzip", "identity"}) {
    SCOPED_TRACE(te);
    RawConn conn(server_->url());
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.SendAll("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te + "\r\n\r\n" + smuggled));
    auto r = ReadResponse(conn);
    EXPECT_EQ(r.status, 400) << r.head << r.body;
    EXPECT_EQ(r.Header("Connection"), "close");
    ::shutdown(conn.fd(), SHUT_WR);
    auto next = ReadResponse(conn);
    EXPECT_EQ(next.status, 0) << "the body was answered as a request: " << next.head;
    EXPECT_TRUE(next.closed);
  }
  ExpectServerStillServing();
}

TEST_F(HostileInput, AOneValueHeaderSentTwiceIsRefusedWhicheverCopyIsValid) {
  const std::string valid = "Authorization: Bearer " + token_ + "\r\n";
  const std::string bogus = "Authorization: Bearer spt_not-a-real-token-000000000000000000000\r\n";
  for (const std::string& headers : {valid + bogus, bogus + valid, valid + valid,
                                     valid + "Content-Type: application/json\r\nContent-Type: text/plain\r\n",
                                     valid + "Idempotency-Key: a\r\nIdempotency-Key: b\r\n", valid + "Host: y\r\n"}) {
    SCOPED_TRACE(headers);
    RawConn conn(server_->url());
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.SendAll("GET /v1/stores HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n"));
    auto r = ReadResponse(conn);
    EXPECT_EQ(r.status, 400) << r.head << r.body;
    EXPECT_EQ(r.Header("Connection"), "close");
  }
  // Headers that may repeat still may.
  RawConn conn(server_->url());
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.SendAll("GET /v1/stores HTTP/1.1\r\nHost: x\r\n" + valid + "Accept: a\r\nAccept: b\r\n\r\n"));
  EXPECT_EQ(ReadResponse(conn).status, 200);
  ExpectServerStillServing();
}

// ---------------------------------------------------------------------------------------
// Hostile JSON bodies
// ---------------------------------------------------------------------------------------

TEST_F(HostileInput, DeeplyNestedJsonIsRefusedWithAProblemAndStoresNothing) {
  ASSERT_EQ(Register("existing").status, 201);
  const auto before = Snapshot();
  const std::string deep_arrays(100'000, '[');
  std::string deep_objects;
  for (int i = 0; i < 50'000; ++i) deep_objects += R"({"a":)";
  std::string deep_labels = R"({"id":"deep","environment":"staging","isolation_mode":"shared","labels":)";
  for (int i = 0; i < 20'000; ++i) deep_labels += R"({"k":)";
  const std::string closed_deep = std::string(10'000, '[') + std::string(10'000, ']');
  for (const std::string* body :
       std::initializer_list<const std::string*>{&deep_arrays, &deep_objects, &deep_labels, &closed_deep}) {
    SCOPED_TRACE(body->substr(0, 40));
    auto resp = Call("POST", "/v1/stores", *body, {{"Content-Type", "application/json"}});
    ExpectProblem(resp, 400, "malformed-request");
  }
  // The same through a merge patch and a token request.
  auto patch = Patch("existing", deep_objects, "\"1\"");
  ExpectProblem(patch, 400, "malformed-request");
  ExpectProblem(Call("POST", "/v1/tokens", deep_arrays, {{"Content-Type", "application/json"}}), 400,
                "malformed-request");
  EXPECT_EQ(Snapshot(), before);
  ExpectServerStillServing();
}

TEST_F(HostileInput, InvalidUtf8AnywhereInAJsonBodyIsRefusedAndStoresNothing) {
  ASSERT_EQ(Register("existing").status, 201);
  const auto before = Snapshot();
  const std::string bad_sequences[] = {
      "\xc0\xaf",          // overlong '/'
      "\xed\xa0\x80",      // UTF-16 surrogate
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\xe2\x82",          // truncated sequence
      "\x80",              // lone continuation byte
      "\xff",              // never valid
  };
  for (const auto& bad : bad_sequences) {
    const std::string in_label_value =
        R"({"id":"utf","environment":"staging","isolation_mode":"shared","labels":{"team":"a)" + bad + R"("}})";
    const std::string in_label_key =
        R"({"id":"utf","environment":"staging","isolation_mode":"shared","labels":{"t)" + bad + R"(":"a"}})";
    const std::string in_field_name =
        R"({"id":"utf","environment":"staging","isolation_mode":"shared","x)" + bad + R"(":1})";
    for (const auto& body : {in_label_value, in_label_key, in_field_name}) {
      SCOPED_TRACE(::testing::PrintToString(body));
      ExpectProblem(Call("POST", "/v1/stores", body, {{"Content-Type", "application/json"}}), 400, "malformed-request");
    }
    SCOPED_TRACE(::testing::PrintToString(bad));
    ExpectProblem(Patch("existing", R"({"labels":{"team":")" + bad + R"("}})", "\"1\""), 400, "malformed-request");
  }
  EXPECT_EQ(Snapshot(), before);
  ExpectProblem(Call("GET", "/v1/stores/utf"), 404, "not-found");
  ExpectServerStillServing();
}

// ---------------------------------------------------------------------------------------
// Header floods
// ---------------------------------------------------------------------------------------

TEST_F(HostileInput, HeaderFloodsGet431OrACloseAndTheServerStaysUp) {
  // Thousands of small headers, together far above the 16 KiB header limit.
  std::string many = "GET /v1/stores HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token_ + "\r\n";
  for (int i = 0; i < 5000; ++i) many += "X-Flood-" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  auto r1 = SendRaw(server_->url(), many);
  if (r1.status != 0) {
    EXPECT_EQ(r1.status, 431) << r1.head << r1.body;
    EXPECT_EQ(r1.Header("Content-Type"), "application/problem+json");
  } else {
    EXPECT_TRUE(r1.closed);
  }

  // One header of four megabytes, never finished.
  std::string huge = "GET /v1/stores HTTP/1.1\r\nHost: x\r\nX-Huge: " + std::string(4 << 20, 'h');
  auto r2 = SendRaw(server_->url(), huge);
  if (r2.status != 0) {
    EXPECT_EQ(r2.status, 431) << r2.head << r2.body;
  } else {
    EXPECT_TRUE(r2.closed);
  }

  // The same header repeated until the limit: the same answer, whichever header crosses it.
  std::string repeated = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 3000; ++i) repeated += "Cookie: a=b\r\n";
  repeated += "\r\n";
  auto r3 = SendRaw(server_->url(), repeated);
  if (r3.status != 0) {
    EXPECT_EQ(r3.status, 431) << r3.head << r3.body;
  } else {
    EXPECT_TRUE(r3.closed);
  }
  ExpectServerStillServing();
}

// ---------------------------------------------------------------------------------------
// Slow clients
// ---------------------------------------------------------------------------------------

TEST_F(HostileInput, SlowlorisClientsAreCutOffByTheReadTimeoutWhileOthersAreServed) {
  RestartWithLimits("  read_timeout_ms: 1000\n");
  // Half dribble their headers, half send the headers whole and dribble the body; each
  // request would take far longer than the read timeout to arrive at one byte / 200 ms.
  constexpr int kSlowClients = 16;
  const std::string body = R"({"id":"slow","environment":"staging","isolation_mode":"shared"})";
  std::vector<RawConn> conns;
  std::vector<std::string> pending;
  for (int i = 0; i < kSlowClients; ++i) {
    conns.emplace_back(server_->url());
    ASSERT_TRUE(conns.back().connected());
    std::string headers = "POST /v1/stores HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token_ +
                          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\nX-Padding: " + std::string(200, 'p') + "\r\n\r\n";
    if (i % 2 == 1) {
      ASSERT_TRUE(conns.back().SendAll(headers));
      pending.push_back(body);
    } else {
      pending.push_back(headers + body);
    }
  }

  std::atomic<bool> done{false};
  std::vector<std::optional<Clock::duration>> closed_after(kSlowClients);
  const auto start = Clock::now();
  std::thread dribbler([&] {
    std::vector<std::size_t> sent(kSlowClients, 0);
    while (!done && Clock::now() - start < 10s) {
      bool all_closed = true;
      for (int i = 0; i < kSlowClients; ++i) {
        if (closed_after[i]) continue;
        if (conns[i].PeerClosed()) {
          closed_after[i] = Clock::now() - start;
          continue;
        }
        all_closed = false;
        if (sent[i] < pending[i].size()) {
          if (conns[i].SendAll(std::string_view(pending[i]).substr(sent[i], 1), 200ms)) ++sent[i];
        }
      }
      if (all_closed) break;
      std::this_thread::sleep_for(200ms);
    }
  });

  // Meanwhile a well-behaved client keeps getting its answers.
  int served = 0;
  while (Clock::now() - start < 2500ms) {
    ExpectWellBehavedRequestAnsweredPromptly();
    ++served;
    std::this_thread::sleep_for(100ms);
  }
  dribbler.join();
  done = true;
  EXPECT_GE(served, 3);

  for (int i = 0; i < kSlowClients; ++i) {
    SCOPED_TRACE("slow client " + std::to_string(i));
    ASSERT_TRUE(closed_after[i].has_value()) << "a dribbling client was never cut off";
    // Cut off by the 1 s read timeout, long before its request could have arrived
    // (at least 12 s at this pace); no store was made from the partial request.
    EXPECT_LT(*closed_after[i], 8s);
    // Whatever came back (if anything) is not a success.
    EXPECT_FALSE(conns[i].received().starts_with("HTTP/1.1 2")) << conns[i].received();
  }
  ExpectProblem(Call("GET", "/v1/stores/slow"), 404, "not-found");
  ExpectServerStillServing();
}

TEST_F(HostileInput, ConnectionsThatNeverSendAreClosedByTheIdleTimeout) {
  RestartWithLimits("  idle_timeout_ms: 1000\n");
  std::vector<RawConn> conns;
  for (int i = 0; i < 50; ++i) {
    conns.emplace_back(server_->url());
    ASSERT_TRUE(conns.back().connected());
  }
  const auto start = Clock::now();
  ExpectWellBehavedRequestAnsweredPromptly();
  std::size_t closed = 0;
  while (closed < conns.size() && Clock::now() - start < 8s) {
    closed = 0;
    for (auto& c : conns) {
      if (c.PeerClosed()) ++closed;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(closed, conns.size()) << "silent connections must be closed by the idle timeout";
  ExpectServerStillServing();
}

// ---------------------------------------------------------------------------------------
// Overload
// ---------------------------------------------------------------------------------------

TEST_F(HostileInput, MoreConcurrentRequestsThanMaxInFlightGet429WithRetryAfter) {
  // Only requests being handled count toward max_in_flight (not slow uploads, not
  // long-polls), so the server is overloaded with bursts of complete requests that all
  // arrive at once; with a limit of 1 and one I/O thread, some of a burst must overlap.
  RestartWithLimits("  max_in_flight: 1\n  principal_rps: 100000\n  principal_burst: 100000\n");
  constexpr int kBurst = 48;
  int ok = 0;
  int too_many = 0;
  const auto start = Clock::now();
  for (int round = 0; round < 30 && (too_many == 0 || ok == 0) && Clock::now() - start < 8s; ++round) {
    std::vector<RawConn> conns;
    for (int i = 0; i < kBurst; ++i) conns.emplace_back(server_->url());
    const std::string req = Get("/v1/stores?limit=100", token_);
    for (auto& c : conns) ASSERT_TRUE(c.SendAll(req));
    for (auto& c : conns) {
      auto r = ReadResponse(c);
      if (r.status == 200) {
        ++ok;
      } else {
        ASSERT_EQ(r.status, 429) << r.head << r.body;
        ++too_many;
        EXPECT_EQ(r.Header("Retry-After"), "1");
        EXPECT_EQ(r.Header("Content-Type"), "application/problem+json");
        EXPECT_NE(r.body.find("urn:storeplane:problem:too-many-requests"), std::string::npos) << r.body;
        EXPECT_NE(r.body.find("capacity"), std::string::npos) << r.body;
      }
    }
  }
  EXPECT_GT(too_many, 0) << "no request was ever refused at capacity";
  EXPECT_GT(ok, 0) << "no request was ever served";
  ExpectServerStillServing();
}

TEST_F(HostileInput, ManyParallelClientsAtASmallInFlightLimitGetOnly200Or429AndOthersAreServed) {
  RestartWithLimits("  max_in_flight: 8\n  principal_rps: 100000\n  principal_burst: 100000\n");
  constexpr int kThreads = 6;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> too_many{0};
  std::atomic<int> other{0};
  std::mutex other_mu;
  std::string other_example;
  std::vector<std::thread> hammers;
  for (int t = 0; t < kThreads; ++t) {
    hammers.emplace_back([&] {
      while (!stop) {
        RawConn c(server_->url());
        // Keep-alive: several requests on each connection, all written at once.
        std::string reqs;
        for (int i = 0; i < 8; ++i) reqs += Get("/v1/stores?limit=50", token_);
        if (!c.SendAll(reqs)) continue;
        for (int i = 0; i < 8; ++i) {
          auto r = ReadResponse(c);
          if (r.status == 200) {
            ++ok;
          } else if (r.status == 429 && r.Header("Retry-After") == "1") {
            ++too_many;
          } else {
            ++other;
            std::lock_guard lock(other_mu);
            other_example = r.head + r.body;
            break;
          }
        }
      }
    });
  }
  const auto start = Clock::now();
  while (Clock::now() - start < 2s) {
    // A 429 is an honest answer under overload; the point is that it comes at once.
    const auto t0 = Clock::now();
    auto resp = Call("GET", "/healthz", "", {}, false);
    EXPECT_TRUE(resp.status == 200 || resp.status == 429) << resp.status << " " << resp.body;
    EXPECT_LT(Clock::now() - t0, 2s);
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  for (auto& t : hammers) t.join();
  EXPECT_EQ(other.load(), 0) << other_example;
  EXPECT_GT(ok.load(), 0);
  ExpectServerStillServing();
}

TEST_F(HostileInput, UnauthenticatedFloodGets401sWithoutHurtingAnAuthenticatedClient) {
  constexpr int kThreads = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> unauthorized{0};
  std::atomic<int> other{0};
  std::mutex other_mu;
  std::string other_example;
  std::vector<std::thread> flood;
  for (int t = 0; t < kThreads; ++t) {
    flood.emplace_back([&, t] {
      int n = 0;
      while (!stop) {
        RawConn c(server_->url());
        for (int i = 0; i < 20 && !stop; ++i, ++n) {
          // No token, a malformed Authorization header, and a well-formed unknown token.
          std::string req = "GET /v1/stores HTTP/1.1\r\nHost: x\r\n";
          if (n % 3 == 1) req += "Authorization: Basic YWRtaW46YWRtaW4=\r\n";
          if (n % 3 == 2) req += "Authorization: Bearer spt_forged" + std::to_string(t * 100000 + n) + "\r\n";
          req += "\r\n";
          if (!c.SendAll(req)) break;
          auto r = ReadResponse(c);
          if (r.status == 401) {
            ++unauthorized;
          } else {
            ++other;
            std::lock_guard lock(other_mu);
            other_example = std::to_string(r.status) + " " + r.head + r.body;
            break;
          }
        }
      }
    });
  }
  const auto start = Clock::now();
  int served = 0;
  while (Clock::now() - start < 2s) {
    ExpectWellBehavedRequestAnsweredPromptly();
    ++served;
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  for (auto& t : flood) t.join();
  EXPECT_EQ(other.load(), 0) << other_example;
  EXPECT_GT(unauthorized.load(), 20);
  EXPECT_GE(served, 3);
  ExpectServerStillServing();
}

}  // namespace
}  // namespace storeplane::testing
