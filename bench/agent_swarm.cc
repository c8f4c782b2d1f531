// bench_agent_swarm: a load generator for the agent channel and the operator API. One
// process drives a slice of the agents (--first, --agents) over --conns keep-alive
// connections; bench/run.sh starts several processes (the per-process descriptor limit)
// and merges their JSON (the latency histograms are written sparse, so they merge exactly).
//
// Targets:
//   storeplane  agents are enrolled through the operator API (stores <prefix><i>, one
//               enrollment token each, POST /agent/v1/enroll on the agent's connection),
//               or --preenrolled (bench_populate wrote the agents with deterministic
//               credentials, no setup round); heartbeats POST /agent/v1/heartbeat.
//   hello       no setup; the same request shape is POSTed to "/" (bench_hello_server).
//   etcd        etcd's JSON gateway: each agent grants a lease (POST /v3/lease/grant) and
//               renews it (POST /v3/lease/keepalive), or --etcd-op put: POST /v3/kv/put.
//
// Modes (--mode):
//   heartbeat   closed loop (one request in flight per connection, the next sent at the
//               answer) or, with --rate R, open loop: every agent sends at its own fixed
//               interval (agents / R) from a random phase, and latency is measured from
//               the scheduled send time (no coordinated omission). --measure-after-s W:
//               the first W seconds of the window are warm-up, not counted. --ramp-s R:
//               the agents join evenly over the first R seconds (open loop). --long-polls L: the
//               first L agents also hold a long-poll (GET /agent/v1/operations) on a
//               connection of their own for the whole window.
//   receipt     every agent heartbeats once and holds a long-poll on its connection
//               (heartbeating again whenever one returns empty); --operator-conns
//               operator connections POST /v1/stores/{id}/operations for random idle
//               agents at --ops-rate per second; latency is from just before the POST is
//               written to the moment the agent's long-poll returns the operation.
//   lost        agents heartbeat open loop every --interval-s; after --warmup-s the first
//               --lost of them stop (connections left open, like a cut network); the
//               operator polls GET /v1/stores/{id}/agent until each is "offline" and
//               records the time since its last heartbeat was sent.
//   mutate      --conns operator clients POST /v1/stores (an audited, durable write each)
//               in a closed loop for --seconds.
//   read        --conns operator clients: --requests GET /v1/stores/<prefix><random> and
//               then --requests GET /v1/stores?<--list-query>, closed loop.
//
// Connections are spread over 127.0.0.1..127.0.0.K source addresses (bind before connect).
// --ready-file/--go-file: after setup the process writes the ready file and waits for the
// go file, so that several processes start their measured windows together.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "core/operation.h"
#include "core/store.h"
#include "protocol/agent_wire.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

enum class Target { kStoreplane, kHello, kEtcd };

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string token;
  Target target = Target::kStoreplane;
  std::string mode = "heartbeat";
  std::string etcd_op = "keepalive";
  long first = 0;
  int agents = 100;
  int conns = 0;  // 0: one per agent
  double seconds = 10;
  double rate = 0;             // heartbeats/s offered by this process; 0 = closed loop
  double measure_after_s = 0;  // heartbeat mode: the first part of the window is warm-up
  double ramp_s = 0;           // open loop: agents join evenly over the first ramp_s seconds
  int long_polls = 0;
  int poll_wait_ms = 25'000;
  bool preenrolled = false;
  int setup_concurrency = 16;
  int connect_concurrency = 256;
  int source_addresses = 0;  // 0: 32
  std::string store_prefix = "bench-";
  std::string ready_file;
  std::string go_file;
  std::string json_file;
  // receipt
  double ops_rate = 100;
  int operator_conns = 4;
  std::string operation = "cache.flush";
  // lost
  double interval_s = 1;
  int lost = 100;
  double warmup_s = 3;
  double lost_timeout_intervals = 10;
  // read
  int requests = 2000;
  long store_count = 100'000;
  std::string list_query = "environment=production&selector=tier%3Dgold&limit=100";
};

// Latency histogram with 1 us buckets up to 10 s; slower answers go to an overflow count
// (the exact maximum is kept apart).
class Histogram {
 public:
  static constexpr std::size_t kBuckets = 10'000'000;
  void Record(std::int64_t us) {
    if (buckets_.empty()) buckets_.assign(kBuckets, 0);
    if (us < 0) us = 0;
    max_us_ = std::max(max_us_, us);
    ++count_;
    if (static_cast<std::size_t>(us) < kBuckets) {
      ++buckets_[static_cast<std::size_t>(us)];
    } else {
      ++overflow_;
    }
  }
  std::int64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::max(1.0, q * static_cast<double>(count_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return static_cast<std::int64_t>(i);
    }
    return max_us_;
  }
  std::uint64_t count() const { return count_; }
  // Summary plus the sparse buckets ([us, count] pairs; overflow as [max, n]).
  json::object ToJson() const {
    auto ms = [](std::int64_t us) { return static_cast<double>(us) / 1000.0; };
    json::array sparse;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      if (buckets_[i] != 0) sparse.push_back(json::array{static_cast<std::int64_t>(i), buckets_[i]});
    }
    if (overflow_ != 0) sparse.push_back(json::array{max_us_, overflow_});
    return json::object{{"count", count_},
                        {"p50_ms", ms(Quantile(0.50))},
                        {"p90_ms", ms(Quantile(0.90))},
                        {"p99_ms", ms(Quantile(0.99))},
                        {"p999_ms", ms(Quantile(0.999))},
                        {"max_ms", ms(max_us_)},
                        {"hist_us", std::move(sparse)}};
  }

 private:
  std::vector<std::uint32_t> buckets_;
  std::uint64_t overflow_ = 0;
  std::uint64_t count_ = 0;
  std::int64_t max_us_ = 0;
};

struct Counters {
  std::uint64_t ok = 0;
  std::uint64_t rejected = 0;
  std::uint64_t throttled = 0;
  std::uint64_t io_errors = 0;
  std::uint64_t setup_errors = 0;
  std::uint64_t late = 0;       // open loop: sends that started after their scheduled time + 1 s
  std::uint64_t warmup_ok = 0;  // 2xx answers to requests of the warm-up (not in the figures)
};

struct Agent {
  long index = 0;
  std::string store_id;
  std::string credential;
  std::string enrollment_token;
  std::string session;
  std::string heartbeat_body;
  std::string lease_id;
  double phase_s = 0;  // open loop: offset of the first send
  double start_s = 0;  // open loop: no send before this (ramp-up)
  bool ready = false;
  // receipt
  bool busy = false;
  Clock::time_point op_sent;
  std::unordered_set<std::string> seen_ops;
  // lost
  bool lost = false;
  Clock::time_point last_sent;
  bool detected = false;
};

struct Conn {
  int index = 0;
  std::optional<tcp::socket> socket;
  beast::flat_buffer buffer;
  std::vector<Agent*> agents;
};

struct State {
  Options options;
  asio::io_context io{1};
  std::string host_header;
  std::vector<std::unique_ptr<Agent>> agents;
  std::vector<std::unique_ptr<Conn>> conns;      // the agents' connections
  std::vector<std::unique_ptr<Conn>> polls;      // long-poll connections (heartbeat mode)
  std::vector<std::unique_ptr<Conn>> operators;  // operator connections
  Counters counters;
  Histogram latency;  // the mode's main figure
  Histogram second;   // receipt: operator POST; read: the list requests
  std::uint64_t long_poll_returns = 0;
  std::uint64_t long_poll_errors = 0;
  std::uint64_t ops_requested = 0;
  std::uint64_t ops_received = 0;
  std::uint64_t ops_refused = 0;
  std::uint64_t lost_detected = 0;
  std::uint64_t list_items = 0;
  bool stop = false;
  std::mt19937_64 rng{std::random_device{}()};
};

std::string RandomHex(std::mt19937_64& rng, int bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    const auto b = static_cast<unsigned>(rng() & 0xff);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::string Base64(std::string_view text) {
  std::string out(beast::detail::base64::encoded_size(text.size()), '\0');
  out.resize(beast::detail::base64::encode(out.data(), text.data(), text.size()));
  return out;
}

// The credential bench_populate wrote for store <prefix><index>.
std::string PreenrolledCredential(long index) {
  std::ostringstream out;
  out << "spa_benchcred" << std::setw(30) << std::setfill('0') << index;
  return out.str();
}

// A heartbeat as shop-agent sends it: six checks, the full allow-list, a release.
std::string HeartbeatBody(const std::string& session, std::mt19937_64& rng) {
  using namespace storeplane;
  protocol::Heartbeat hb;
  hb.agent_version = "0.1.0";
  hb.session = session;
  hb.release = "r2026.12.04-" + std::to_string(rng() % 1000);
  hb.isolation_mode = core::IsolationMode::kShared;
  hb.allowed_operations = core::AllOperationNames();
  hb.checks = {
      {core::CheckName::kStorefront, core::CheckStatus::kPass, "http_200"},
      {core::CheckName::kMaintenance, core::CheckStatus::kPass, "maintenance_off"},
      {core::CheckName::kCron, core::CheckStatus::kPass, "cron_ok"},
      {core::CheckName::kDisk, core::CheckStatus::kPass, "disk_ok"},
      {core::CheckName::kRelease, core::CheckStatus::kPass, "release_ok"},
      {core::CheckName::kIsolation, core::CheckStatus::kPass, "isolation_ok"},
  };
  return protocol::Encode(hb);
}

std::int64_t Us(Clock::duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); }
Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

asio::ip::address SourceAddress(const Options& options, long index) {
  // 32 by default: several processes and back-to-back runs share the ephemeral ports of
  // each address, and the closed connections of the previous run sit in TIME_WAIT.
  const long k = options.source_addresses > 0 ? options.source_addresses : 32;
  const long n = 1 + (options.first + index) % std::min<long>(k, 250);
  return asio::ip::make_address_v4("127.0.0." + std::to_string(n));
}

asio::awaitable<void> Connect(State& state, Conn& conn, long index) {
  conn.socket.emplace(state.io);
  conn.buffer.clear();
  const tcp::endpoint remote{asio::ip::make_address(state.options.host), state.options.port};
  conn.socket->open(tcp::v4());
  conn.socket->set_option(tcp::no_delay(true));
  if (state.options.host.rfind("127.", 0) == 0) {
    conn.socket->bind(tcp::endpoint{SourceAddress(state.options, index), 0});
  }
  co_await conn.socket->async_connect(remote, asio::use_awaitable);
}

// One request on a keep-alive connection; returns the answer.
asio::awaitable<http::response<http::string_body>> Exchange(State& state, Conn& conn, http::verb verb,
                                                            std::string_view target, const std::string& bearer,
                                                            std::string body) {
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, state.host_header);
  if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
  if (verb != http::verb::get) request.set(http::field::content_type, "application/json");
  request.set(http::field::user_agent, "shop-agent/0.1.0");
  request.body() = std::move(body);
  request.keep_alive(true);
  if (verb != http::verb::get) request.prepare_payload();
  co_await http::async_write(*conn.socket, request, asio::use_awaitable);
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  co_await http::async_read(*conn.socket, conn.buffer, parser, asio::use_awaitable);
  co_return parser.release();
}

// The heartbeat (or its stand-in for hello and etcd) of one agent.
asio::awaitable<http::response<http::string_body>> Beat(State& state, Conn& conn, Agent& agent) {
  std::string target = "/agent/v1/heartbeat";
  std::string bearer = agent.credential;
  std::string body = agent.heartbeat_body;
  if (state.options.target == Target::kHello) {
    target = "/";
  } else if (state.options.target == Target::kEtcd) {
    bearer.clear();
    if (state.options.etcd_op == "put") {
      target = "/v3/kv/put";
      body = json::serialize(
          json::object{{"key", Base64("bench/" + agent.store_id)}, {"value", Base64(agent.heartbeat_body)}});
    } else {
      target = "/v3/lease/keepalive";
      body = json::serialize(json::object{{"ID", agent.lease_id}});
    }
  }
  co_return co_await Exchange(state, conn, http::verb::post, target, bearer, std::move(body));
}

// Operator setup: registers the stores and creates one enrollment token each.
asio::awaitable<void> SetupWorker(State& state, std::size_t& next) {
  Conn conn;
  while (next < state.agents.size()) {
    Agent& agent = *state.agents[next++];
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        if (!conn.socket) co_await Connect(state, conn, 0);
        json::object store{{"id", agent.store_id}, {"environment", "development"}, {"isolation_mode", "shared"}};
        auto created =
            co_await Exchange(state, conn, http::verb::post, "/v1/stores", state.options.token, json::serialize(store));
        if (created.result() != http::status::created && created.result() != http::status::conflict) {
          std::cerr << "POST /v1/stores " << agent.store_id << ": " << created.result_int() << " " << created.body()
                    << "\n";
          ++state.counters.setup_errors;
          break;
        }
        auto token =
            co_await Exchange(state, conn, http::verb::post, "/v1/stores/" + agent.store_id + "/enrollment-tokens",
                              state.options.token, "{}");
        if (token.result() != http::status::created) {
          std::cerr << "POST enrollment-tokens " << agent.store_id << ": " << token.result_int() << " " << token.body()
                    << "\n";
          ++state.counters.setup_errors;
          break;
        }
        agent.enrollment_token = std::string(json::parse(token.body()).at("token").as_string());
        break;
      } catch (const std::exception& e) {
        conn.socket.reset();
        if (attempt == 2) {
          std::cerr << "setup " << agent.store_id << ": " << e.what() << "\n";
          ++state.counters.setup_errors;
        }
      }
    }
  }
}

// Makes one agent ready on its connection: enroll (or preenrolled), grant its etcd lease,
// and a first heartbeat when the mode needs the server to know its allow-list.
asio::awaitable<void> PrepareAgent(State& state, Conn& conn, Agent& agent, bool first_heartbeat) {
  const auto& o = state.options;
  if (o.target == Target::kHello) {
    agent.credential = "spa_hello";
  } else if (o.target == Target::kEtcd) {
    if (o.etcd_op != "put") {
      auto granted = co_await Exchange(state, conn, http::verb::post, "/v3/lease/grant", "", R"({"TTL":"60"})");
      if (granted.result() != http::status::ok) {
        std::cerr << "lease grant: " << granted.result_int() << " " << granted.body() << "\n";
        ++state.counters.setup_errors;
        co_return;
      }
      const json::value parsed = json::parse(granted.body());
      const auto& id = parsed.at("ID");
      agent.lease_id = id.is_string() ? std::string(id.as_string()) : json::serialize(id);
    }
  } else if (o.preenrolled) {
    agent.credential = PreenrolledCredential(agent.index);
  } else {
    if (agent.enrollment_token.empty()) co_return;
    storeplane::protocol::EnrollRequest enroll{agent.store_id, agent.enrollment_token, "0.1.0"};
    auto response =
        co_await Exchange(state, conn, http::verb::post, "/agent/v1/enroll", "", storeplane::protocol::Encode(enroll));
    if (response.result() != http::status::created) {
      std::cerr << "enroll " << agent.store_id << ": " << response.result_int() << " " << response.body() << "\n";
      ++state.counters.setup_errors;
      co_return;
    }
    auto decoded = storeplane::protocol::DecodeEnrollResponse(response.body());
    if (!decoded) {
      ++state.counters.setup_errors;
      co_return;
    }
    agent.credential = decoded->credential;
  }
  if (first_heartbeat) {
    auto answer = co_await Beat(state, conn, agent);
    if (answer.result_int() / 100 != 2) {
      std::cerr << "first heartbeat " << agent.store_id << ": " << answer.result_int() << " " << answer.body() << "\n";
      ++state.counters.setup_errors;
      co_return;
    }
  }
  agent.ready = true;
}

// Connector: takes connections from a shared cursor (bounded concurrency, so that the
// listen backlog does not overflow), connects and prepares their agents.
asio::awaitable<void> ConnectWorker(State& state, std::vector<std::unique_ptr<Conn>>& conns, std::size_t& next,
                                    bool prepare, bool first_heartbeat) {
  while (next < conns.size()) {
    Conn& conn = *conns[next++];
    try {
      co_await Connect(state, conn, conn.index);
      if (prepare) {
        for (Agent* agent : conn.agents) co_await PrepareAgent(state, conn, *agent, first_heartbeat);
      }
    } catch (const std::exception& e) {
      if (++state.counters.io_errors <= 3) std::cerr << "connect/prepare " << conn.index << ": " << e.what() << "\n";
      conn.socket.reset();
    }
  }
}

void Run(State& state) {
  state.io.run();
  state.io.restart();
}

void CloseAll(std::vector<std::unique_ptr<Conn>>& conns) {
  for (auto& c : conns) {
    if (c->socket) {
      boost::system::error_code ec;
      c->socket->shutdown(tcp::socket::shutdown_both, ec);
      c->socket->close(ec);
    }
  }
}

void Count(State& state, const http::response<http::string_body>& response) {
  if (response.result_int() / 100 == 2) {
    ++state.counters.ok;
  } else {
    ++state.counters.rejected;
    if (response.result() == http::status::too_many_requests) ++state.counters.throttled;
    if (state.counters.rejected <= 3) {
      std::cerr << "answer " << response.result_int() << ": " << response.body().substr(0, 300) << "\n";
    }
  }
}

// ---- heartbeat and lost modes ------------------------------------------------------------

// One connection's agents, closed loop or on their schedules (open loop).
asio::awaitable<void> HeartbeatLoop(State& state, Conn& conn, Clock::time_point start, Clock::time_point deadline,
                                    double interval_s) {
  const auto& o = state.options;
  const bool open = interval_s > 0;
  const bool lost_mode = o.mode == "lost";
  const auto stop_lost_at = start + Seconds(o.warmup_s);
  const auto measure_from = start + Seconds(lost_mode ? 0.0 : o.measure_after_s);
  std::vector<Agent*> agents;
  for (Agent* a : conn.agents) {
    if (a->ready) agents.push_back(a);
  }
  std::sort(agents.begin(), agents.end(), [](Agent* a, Agent* b) { return a->phase_s < b->phase_s; });
  if (agents.empty() || !conn.socket) co_return;
  asio::steady_timer timer{state.io};
  try {
    for (long round = 0; !state.stop; ++round) {
      std::size_t stopped = 0;
      for (Agent* agent : agents) {
        if (state.stop) break;
        Clock::time_point scheduled = Clock::now();
        if (open) {
          scheduled = start + Seconds(agent->phase_s + static_cast<double>(round) * interval_s);
          if (scheduled >= deadline) co_return;
          if (scheduled < start + Seconds(agent->start_s)) continue;  // not joined yet
          if (lost_mode && agent->lost && scheduled >= stop_lost_at) {
            if (++stopped == agents.size()) co_return;  // every agent here is lost now
            continue;
          }
          if (scheduled > Clock::now()) {
            timer.expires_at(scheduled);
            co_await timer.async_wait(asio::use_awaitable);
            if (state.stop) break;
          } else if (Clock::now() - scheduled > std::chrono::seconds(1)) {
            ++state.counters.late;
          }
        } else if (scheduled >= deadline) {
          co_return;
        }
        const auto sent = Clock::now();
        auto response = co_await Beat(state, conn, *agent);
        const auto end = Clock::now();
        if (!open && end > deadline) co_return;  // answered after the window: not counted
        if (scheduled >= measure_from) {
          state.latency.Record(Us(end - scheduled));
          Count(state, response);
        } else if (response.result_int() / 100 == 2) {
          ++state.counters.warmup_ok;
        }
        if (response.result_int() / 100 == 2) agent->last_sent = sent;
        if (!response.keep_alive()) {
          ++state.counters.io_errors;
          co_return;
        }
      }
    }
  } catch (const std::exception&) {
    if (!state.stop && Clock::now() < deadline) ++state.counters.io_errors;
  }
}

// Holds a long-poll for the agent until the window closes (its socket is closed then).
asio::awaitable<void> LongPollLoop(State& state, Conn& conn, Agent& agent, Clock::time_point deadline) {
  const std::string target =
      "/agent/v1/operations?session=" + agent.session + "&wait_ms=" + std::to_string(state.options.poll_wait_ms);
  try {
    while (Clock::now() < deadline && !state.stop) {
      auto response = co_await Exchange(state, conn, http::verb::get, target, agent.credential, "");
      if (response.result_int() / 100 != 2) {
        ++state.long_poll_errors;
        std::cerr << "long-poll " << agent.store_id << ": " << response.result_int() << " " << response.body() << "\n";
        co_return;
      }
      ++state.long_poll_returns;
    }
  } catch (const std::exception&) {
    if (Clock::now() < deadline && !state.stop) ++state.long_poll_errors;
  }
}

// lost: polls the lost agents' availability until each is offline.
asio::awaitable<void> LostPoller(State& state, Conn& conn, int which, Clock::time_point start,
                                 Clock::time_point give_up) {
  const auto& o = state.options;
  asio::steady_timer timer{state.io};
  timer.expires_at(start + Seconds(o.warmup_s));
  co_await timer.async_wait(asio::use_awaitable);
  std::vector<Agent*> mine;
  for (auto& a : state.agents) {
    if (a->lost && a->ready && static_cast<int>(a->index % o.operator_conns) == which) mine.push_back(a.get());
  }
  try {
    while (!state.stop && Clock::now() < give_up) {
      bool pending = false;
      for (Agent* agent : mine) {
        if (agent->detected) continue;
        pending = true;
        auto response =
            co_await Exchange(state, conn, http::verb::get, "/v1/stores/" + agent->store_id + "/agent", o.token, "");
        const auto now = Clock::now();
        if (response.result() != http::status::ok) {
          ++state.counters.rejected;
          continue;
        }
        const auto availability = json::parse(response.body()).as_object().at("availability").as_string();
        if (availability == "offline") {
          agent->detected = true;
          ++state.lost_detected;
          state.second.Record(Us(now - agent->last_sent));
        }
        timer.expires_after(std::chrono::milliseconds(2));
        co_await timer.async_wait(asio::use_awaitable);
      }
      if (!pending) break;
    }
  } catch (const std::exception& e) {
    std::cerr << "lost poller: " << e.what() << "\n";
    ++state.counters.io_errors;
  }
}

// ---- receipt mode ------------------------------------------------------------------------

asio::awaitable<void> ReceiptAgent(State& state, Conn& conn, Agent& agent) {
  const std::string target =
      "/agent/v1/operations?session=" + agent.session + "&wait_ms=" + std::to_string(state.options.poll_wait_ms);
  try {
    while (!state.stop) {
      auto response = co_await Exchange(state, conn, http::verb::get, target, agent.credential, "");
      const auto now = Clock::now();
      if (response.result() == http::status::no_content) {
        ++state.long_poll_returns;
        auto beat = co_await Beat(state, conn, agent);  // stay online between long-polls
        Count(state, beat);
        continue;
      }
      if (response.result() != http::status::ok) {
        ++state.long_poll_errors;
        std::cerr << "long-poll " << agent.store_id << ": " << response.result_int() << " " << response.body() << "\n";
        co_return;
      }
      const json::value parsed = json::parse(response.body());
      for (const auto& op : parsed.as_object().at("operations").as_array()) {
        const std::string id{op.as_object().at("id").as_string()};
        if (!agent.seen_ops.insert(id).second) continue;  // handed out again
        if (agent.busy) {
          state.latency.Record(Us(now - agent.op_sent));
          ++state.ops_received;
          agent.busy = false;
        }
      }
    }
  } catch (const std::exception&) {
    if (!state.stop) ++state.long_poll_errors;
  }
}

asio::awaitable<void> Operator(State& state, Conn& conn, Clock::time_point start, Clock::time_point deadline) {
  const auto& o = state.options;
  const double interval = static_cast<double>(o.operator_conns) / o.ops_rate;
  asio::steady_timer timer{state.io};
  const std::string body = json::serialize(json::object{{"name", o.operation}});
  std::vector<Agent*> ready;
  for (auto& a : state.agents) {
    if (a->ready) ready.push_back(a.get());
  }
  if (ready.empty()) co_return;
  try {
    for (long k = 0;; ++k) {
      const auto at =
          start + Seconds(interval * (static_cast<double>(k) + static_cast<double>(conn.index) / o.operator_conns));
      if (at >= deadline) break;
      if (at > Clock::now()) {
        timer.expires_at(at);
        co_await timer.async_wait(asio::use_awaitable);
      }
      Agent* agent = nullptr;
      for (int tries = 0; tries < 50 && !agent; ++tries) {
        Agent* candidate = ready[state.rng() % ready.size()];
        if (!candidate->busy) agent = candidate;
      }
      if (!agent) continue;
      agent->busy = true;
      agent->op_sent = Clock::now();
      ++state.ops_requested;
      auto response = co_await Exchange(state, conn, http::verb::post, "/v1/stores/" + agent->store_id + "/operations",
                                        o.token, body);
      state.second.Record(Us(Clock::now() - agent->op_sent));
      if (response.result() != http::status::accepted) {
        ++state.ops_refused;
        agent->busy = false;
        if (state.ops_refused <= 3) {
          std::cerr << "POST operations: " << response.result_int() << " " << response.body() << "\n";
        }
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "operator: " << e.what() << "\n";
    ++state.counters.io_errors;
  }
}

// ---- operator API modes ------------------------------------------------------------------

asio::awaitable<void> Mutator(State& state, Conn& conn, Clock::time_point deadline) {
  long n = 0;
  try {
    while (Clock::now() < deadline) {
      const std::string id = "mut-" + std::to_string(state.options.first + conn.index) + "-" + std::to_string(n++);
      json::object store{{"id", id},
                         {"environment", "development"},
                         {"isolation_mode", "shared"},
                         {"labels", json::object{{"bench", "mutate"}}}};
      const auto start = Clock::now();
      auto response =
          co_await Exchange(state, conn, http::verb::post, "/v1/stores", state.options.token, json::serialize(store));
      const auto end = Clock::now();
      if (end > deadline) break;
      state.latency.Record(Us(end - start));
      Count(state, response);
    }
  } catch (const std::exception&) {
    ++state.counters.io_errors;
  }
}

asio::awaitable<void> Reader(State& state, Conn& conn, int& remaining, bool list) {
  const auto& o = state.options;
  try {
    while (remaining > 0) {
      --remaining;
      const std::string target = list ? "/v1/stores?" + o.list_query
                                      : "/v1/stores/" + o.store_prefix + std::to_string(state.rng() % o.store_count);
      const auto start = Clock::now();
      auto response = co_await Exchange(state, conn, http::verb::get, target, o.token, "");
      (list ? state.second : state.latency).Record(Us(Clock::now() - start));
      Count(state, response);
      if (list && response.result() == http::status::ok) {
        state.list_items += json::parse(response.body()).as_object().at("items").as_array().size();
      }
    }
  } catch (const std::exception&) {
    ++state.counters.io_errors;
  }
}

void Usage() {
  std::cerr << "usage: bench_agent_swarm --url http://127.0.0.1:PORT [--token ADMIN_TOKEN]\n"
               "  [--target storeplane|hello|etcd] [--mode heartbeat|receipt|lost|mutate|read]\n"
               "  [--first I] [--agents N] [--conns C] [--seconds D] [--rate R] [--ramp-s R] [--measure-after-s W]\n  "
               "[--long-polls L]\n"
               "  [--poll-wait-ms W] [--preenrolled] [--etcd-op keepalive|put] [--store-prefix bench-]\n"
               "  [--ops-rate R] [--operator-conns C] [--interval-s S] [--lost K] [--warmup-s W]\n"
               "  [--requests N] [--store-count N] [--list-query Q] [--source-addresses K]\n"
               "  [--setup-concurrency C] [--ready-file F --go-file F] [--json FILE]\n";
}

bool ParseUrl(const std::string& url, Options& options) {
  std::string_view rest = url;
  if (rest.rfind("http://", 0) != 0) return false;
  rest.remove_prefix(7);
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return false;
  options.host = std::string(rest.substr(0, colon));
  const int port = std::atoi(std::string(rest.substr(colon + 1)).c_str());
  if (port <= 0 || port > 65535) return false;
  options.port = static_cast<unsigned short>(port);
  return true;
}

bool ParseArgs(int argc, char** argv, Options& o) {
  std::string url;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--preenrolled") {
      o.preenrolled = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    if (arg == "--url") {
      url = value;
    } else if (arg == "--token") {
      o.token = value;
    } else if (arg == "--target") {
      if (value == "hello") {
        o.target = Target::kHello;
      } else if (value == "etcd") {
        o.target = Target::kEtcd;
      } else if (value == "storeplane") {
        o.target = Target::kStoreplane;
      } else {
        return false;
      }
    } else if (arg == "--mode") {
      o.mode = value;
    } else if (arg == "--etcd-op") {
      o.etcd_op = value;
    } else if (arg == "--first") {
      o.first = std::atol(value.c_str());
    } else if (arg == "--agents") {
      o.agents = std::atoi(value.c_str());
    } else if (arg == "--conns") {
      o.conns = std::atoi(value.c_str());
    } else if (arg == "--seconds") {
      o.seconds = std::atof(value.c_str());
    } else if (arg == "--rate") {
      o.rate = std::atof(value.c_str());
    } else if (arg == "--measure-after-s") {
      o.measure_after_s = std::atof(value.c_str());
    } else if (arg == "--ramp-s") {
      o.ramp_s = std::atof(value.c_str());
    } else if (arg == "--long-polls") {
      o.long_polls = std::atoi(value.c_str());
    } else if (arg == "--poll-wait-ms") {
      o.poll_wait_ms = std::atoi(value.c_str());
    } else if (arg == "--store-prefix") {
      o.store_prefix = value;
    } else if (arg == "--ops-rate") {
      o.ops_rate = std::atof(value.c_str());
    } else if (arg == "--operator-conns") {
      o.operator_conns = std::atoi(value.c_str());
    } else if (arg == "--operation") {
      o.operation = value;
    } else if (arg == "--interval-s") {
      o.interval_s = std::atof(value.c_str());
    } else if (arg == "--lost") {
      o.lost = std::atoi(value.c_str());
    } else if (arg == "--warmup-s") {
      o.warmup_s = std::atof(value.c_str());
    } else if (arg == "--requests") {
      o.requests = std::atoi(value.c_str());
    } else if (arg == "--store-count") {
      o.store_count = std::atol(value.c_str());
    } else if (arg == "--list-query") {
      o.list_query = value;
    } else if (arg == "--source-addresses") {
      o.source_addresses = std::atoi(value.c_str());
    } else if (arg == "--setup-concurrency") {
      o.setup_concurrency = std::atoi(value.c_str());
    } else if (arg == "--ready-file") {
      o.ready_file = value;
    } else if (arg == "--go-file") {
      o.go_file = value;
    } else if (arg == "--json") {
      o.json_file = value;
    } else {
      return false;
    }
  }
  static const std::vector<std::string> kModes{"heartbeat", "receipt", "lost", "mutate", "read"};
  if (std::find(kModes.begin(), kModes.end(), o.mode) == kModes.end()) return false;
  if (o.conns <= 0) o.conns = o.agents;
  if (o.mode == "heartbeat" || o.mode == "receipt" || o.mode == "lost") o.conns = std::min(o.conns, o.agents);
  o.long_polls = std::min(o.long_polls, o.agents);
  const bool needs_token = o.target == Target::kStoreplane && !(o.mode == "heartbeat" && o.preenrolled);
  return ParseUrl(url, o) && o.agents >= 1 && o.seconds > 0 && o.setup_concurrency >= 1 && o.operator_conns >= 1 &&
         o.ops_rate > 0 && o.interval_s > 0 && o.measure_after_s >= 0 && o.measure_after_s < o.seconds &&
         (!needs_token || !o.token.empty());
}

}  // namespace

int main(int argc, char** argv) {
  auto state_ptr = std::make_unique<State>();
  State& state = *state_ptr;
  Options& o = state.options;
  if (!ParseArgs(argc, argv, o)) {
    Usage();
    return 2;
  }
  state.host_header = o.host + ":" + std::to_string(o.port);
  const bool agent_modes = o.mode == "heartbeat" || o.mode == "receipt" || o.mode == "lost";

  // Agents and their connections (agent i on connection i % conns).
  const int n_agents = agent_modes ? o.agents : 0;
  const double interval_s =
      o.mode == "lost" ? o.interval_s : (o.mode == "heartbeat" && o.rate > 0 ? o.agents / o.rate : 0.0);
  std::uniform_real_distribution<double> phase(0.0, interval_s > 0 ? interval_s : 1.0);
  for (int i = 0; i < n_agents; ++i) {
    auto agent = std::make_unique<Agent>();
    agent->index = o.first + i;
    agent->store_id = o.store_prefix + std::to_string(agent->index);
    agent->session = RandomHex(state.rng, 16);
    agent->heartbeat_body = HeartbeatBody(agent->session, state.rng);
    agent->phase_s = phase(state.rng);
    agent->start_s = o.ramp_s * i / std::max(1, n_agents);
    agent->lost = o.mode == "lost" && i < o.lost;
    state.agents.push_back(std::move(agent));
  }
  const int n_conns = o.conns;  // mutate/read: --conns operator clients
  for (int c = 0; c < n_conns; ++c) {
    auto conn = std::make_unique<Conn>();
    conn->index = c;
    state.conns.push_back(std::move(conn));
  }
  for (int i = 0; i < n_agents; ++i) {
    state.conns[static_cast<std::size_t>(i % n_conns)]->agents.push_back(
        state.agents[static_cast<std::size_t>(i)].get());
  }
  if (o.mode == "heartbeat") {
    for (int i = 0; i < o.long_polls; ++i) {
      auto conn = std::make_unique<Conn>();
      conn->index = n_conns + i;
      conn->agents.push_back(state.agents[static_cast<std::size_t>(i)].get());
      state.polls.push_back(std::move(conn));
    }
  }
  if (o.mode == "receipt" || o.mode == "lost") {
    for (int c = 0; c < o.operator_conns; ++c) {
      auto conn = std::make_unique<Conn>();
      conn->index = c;
      state.operators.push_back(std::move(conn));
    }
  }

  // 1. Operator setup (storeplane agents, unless preenrolled): stores and enrollment tokens.
  const auto setup_start = Clock::now();
  if (agent_modes && o.target == Target::kStoreplane && !o.preenrolled) {
    std::size_t next = 0;
    for (int c = 0; c < o.setup_concurrency; ++c) asio::co_spawn(state.io, SetupWorker(state, next), asio::detached);
    Run(state);
  }
  const double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

  // 2. Connections: the agents' (enroll, lease, first heartbeat), long-polls, operators.
  const auto connect_start = Clock::now();
  // A first heartbeat where the server must know the agent before the window (long-polls,
  // operations, the lost agents' baseline).
  const bool first_heartbeat = o.target == Target::kStoreplane && (o.mode != "heartbeat" || o.long_polls > 0);
  {
    std::size_t next_conn = 0;
    std::size_t next_poll = 0;
    std::size_t next_op = 0;
    for (int c = 0; c < o.connect_concurrency; ++c) {
      asio::co_spawn(state.io, ConnectWorker(state, state.conns, next_conn, agent_modes, first_heartbeat),
                     asio::detached);
    }
    Run(state);
    for (int c = 0; c < o.connect_concurrency; ++c) {
      asio::co_spawn(state.io, ConnectWorker(state, state.polls, next_poll, false, false), asio::detached);
      asio::co_spawn(state.io, ConnectWorker(state, state.operators, next_op, false, false), asio::detached);
    }
    Run(state);
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - connect_start).count();
  int ready = 0;
  for (auto& agent : state.agents) ready += agent->ready ? 1 : 0;
  int open_conns = 0;
  for (auto& c : state.conns) open_conns += c->socket ? 1 : 0;
  for (auto& c : state.polls) open_conns += c->socket ? 1 : 0;
  std::cerr << "bench_agent_swarm[" << o.first << "]: " << ready << "/" << n_agents << " agents ready, " << open_conns
            << " connections (setup " << setup_s << " s, connect " << connect_s << " s)\n";
  if (agent_modes && ready == 0) return 1;

  // 3. Barrier with the other processes.
  if (!o.ready_file.empty()) std::ofstream{o.ready_file} << ready << "\n";
  if (!o.go_file.empty()) {
    while (!std::filesystem::exists(o.go_file)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

  // 4. The measured window.
  const auto start = Clock::now();
  auto deadline = start + Seconds(o.seconds);
  asio::steady_timer closer{state.io};
  int remaining_get = o.requests;
  int remaining_list = o.requests;
  if (o.mode == "heartbeat") {
    for (auto& conn : state.conns) {
      asio::co_spawn(state.io, HeartbeatLoop(state, *conn, start, deadline, interval_s), asio::detached);
    }
    for (auto& conn : state.polls) {
      if (conn->socket && conn->agents[0]->ready) {
        asio::co_spawn(state.io, LongPollLoop(state, *conn, *conn->agents[0], deadline), asio::detached);
      }
    }
    // Long-polls end with the window; open-loop stragglers get 5 s more.
    closer.expires_at(deadline + std::chrono::seconds(interval_s > 0 ? 5 : 0));
    closer.async_wait([&](boost::system::error_code) {
      state.stop = true;
      CloseAll(state.polls);
      CloseAll(state.conns);
    });
  } else if (o.mode == "lost") {
    const auto give_up = start + Seconds(o.warmup_s + o.lost_timeout_intervals * o.interval_s);
    deadline = give_up;
    for (auto& conn : state.conns) {
      asio::co_spawn(state.io, HeartbeatLoop(state, *conn, start, give_up, o.interval_s), asio::detached);
    }
    int pollers_left = static_cast<int>(state.operators.size());
    for (auto& conn : state.operators) {
      asio::co_spawn(state.io, LostPoller(state, *conn, conn->index, start, give_up), [&](std::exception_ptr) {
        if (--pollers_left == 0) {
          state.stop = true;
          closer.cancel();
          CloseAll(state.conns);
          CloseAll(state.operators);
        }
      });
    }
  } else if (o.mode == "receipt") {
    for (auto& conn : state.conns) {
      if (conn->socket && conn->agents[0]->ready) {
        asio::co_spawn(state.io, ReceiptAgent(state, *conn, *conn->agents[0]), asio::detached);
      }
    }
    for (auto& conn : state.operators) {
      asio::co_spawn(state.io, Operator(state, *conn, start, deadline), asio::detached);
    }
    // Operations still in flight get 5 s after the window to arrive.
    closer.expires_at(deadline + std::chrono::seconds(5));
    closer.async_wait([&](boost::system::error_code) {
      state.stop = true;
      CloseAll(state.conns);
      CloseAll(state.operators);
    });
  } else if (o.mode == "mutate") {
    for (auto& conn : state.conns) {
      if (conn->socket) asio::co_spawn(state.io, Mutator(state, *conn, deadline), asio::detached);
    }
  } else if (o.mode == "read") {
    for (auto& conn : state.conns) {
      if (conn->socket) asio::co_spawn(state.io, Reader(state, *conn, remaining_get, false), asio::detached);
    }
    Run(state);
    for (auto& conn : state.conns) {
      if (conn->socket) asio::co_spawn(state.io, Reader(state, *conn, remaining_list, true), asio::detached);
    }
  }
  Run(state);
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double window = o.mode == "heartbeat" ? o.seconds - o.measure_after_s
                        : o.mode == "mutate"  ? o.seconds
                                              : elapsed;

  int lost_count = 0;
  for (auto& a : state.agents) lost_count += a->lost && a->ready ? 1 : 0;
  json::object result{
      {"target", o.target == Target::kHello  ? "hello"
                 : o.target == Target::kEtcd ? "etcd"
                                             : "storeplane"},
      {"mode", o.mode},
      {"etcd_op", o.etcd_op},
      {"first", o.first},
      {"agents", n_agents},
      {"agents_ready", ready},
      {"conns", n_conns},
      {"connections_open", open_conns},
      {"long_polls", static_cast<int>(state.polls.size())},
      {"long_poll_returns", state.long_poll_returns},
      {"long_poll_errors", state.long_poll_errors},
      {"offered_rate", o.rate},
      {"measure_after_s", o.measure_after_s},
      {"ramp_s", o.ramp_s},
      {"interval_s", interval_s},
      {"seconds", window},
      {"requests_ok", state.counters.ok},
      {"requests_rejected", state.counters.rejected},
      {"requests_throttled", state.counters.throttled},
      {"io_errors", state.counters.io_errors},
      {"setup_errors", state.counters.setup_errors},
      {"late_sends", state.counters.late},
      {"warmup_requests_ok", state.counters.warmup_ok},
      {"requests_per_s", static_cast<double>(state.counters.ok) / window},
      {"latency", state.latency.ToJson()},
      {"setup_s", setup_s},
      {"connect_s", connect_s},
  };
  if (o.mode == "receipt") {
    result["ops_requested"] = state.ops_requested;
    result["ops_received"] = state.ops_received;
    result["ops_refused"] = state.ops_refused;
    result["operator_post"] = state.second.ToJson();
  } else if (o.mode == "lost") {
    result["lost"] = lost_count;
    result["lost_detected"] = state.lost_detected;
    result["detection"] = state.second.ToJson();
  } else if (o.mode == "read") {
    result["list"] = state.second.ToJson();
    result["list_items"] = state.list_items;
  }
  const std::string text = json::serialize(result);
  if (!o.json_file.empty()) {
    std::ofstream out{o.json_file};
    out << text << "\n";
  } else {
    std::cout << text << std::endl;
  }
  return state.counters.ok > 0 || state.lost_detected > 0 || state.ops_received > 0 ? 0 : 1;
}
