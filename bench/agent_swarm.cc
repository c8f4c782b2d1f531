// bench_agent_swarm: a load generator for the agent channel. N simulated agents, each with
// its own keep-alive connection, send realistic heartbeats as fast as the server answers
// (closed loop, one request in flight per connection) for D seconds; the tool reports
// requests/s and latency percentiles.
//
// --target storeplane: registers stores bench-0..bench-(N-1) and one enrollment token for
//   each through the operator API (--token is an admin token), enrolls every agent with
//   its own token (POST /agent/v1/enroll) and then sends POST /agent/v1/heartbeat with
//   the agent's credential.
// --target hello: no setup; the same request shape is sent to "/" (bench_hello_server).
//
// Connections are spread over 127.0.0.1..127.0.0.K source addresses (bind before connect)
// so that more than one address's worth of ephemeral ports is available.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
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

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string token;
  int agents = 100;
  double seconds = 10;
  int threads = 1;
  int setup_concurrency = 16;
  int source_addresses = 0;  // 0: one per 20,000 connections
  bool hello = false;
  std::string json_file;
  std::string store_prefix = "bench-";
};

// Latency histogram with 1 us buckets up to 1 s; slower answers go to an overflow count
// (the exact maximum is kept apart).
class Histogram {
 public:
  static constexpr std::size_t kBuckets = 1'000'000;
  Histogram() : buckets_(kBuckets, 0) {}
  void Record(std::int64_t us) {
    if (us < 0) us = 0;
    max_us_ = std::max(max_us_, us);
    ++count_;
    if (static_cast<std::size_t>(us) < kBuckets) {
      ++buckets_[static_cast<std::size_t>(us)];
    } else {
      ++overflow_;
    }
  }
  void Merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
    overflow_ += other.overflow_;
    count_ += other.count_;
    max_us_ = std::max(max_us_, other.max_us_);
  }
  // The smallest value v such that at least q of the samples are <= v (in us).
  std::int64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::max(1.0, q * static_cast<double>(count_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= rank) return static_cast<std::int64_t>(i);
    }
    return max_us_;  // in the overflow
  }
  std::uint64_t count() const { return count_; }
  std::int64_t max_us() const { return max_us_; }

 private:
  std::vector<std::uint32_t> buckets_;
  std::uint64_t overflow_ = 0;
  std::uint64_t count_ = 0;
  std::int64_t max_us_ = 0;
};

// Everything one I/O thread owns: its io_context, its histogram and counters.
struct Worker {
  asio::io_context io{1};
  Histogram histogram;
  std::uint64_t ok = 0;         // 2xx answers in the measured window
  std::uint64_t rejected = 0;   // non-2xx answers (429 included)
  std::uint64_t throttled = 0;  // of which 429
  std::uint64_t io_errors = 0;  // connections lost
  std::uint64_t setup_errors = 0;
};

struct Agent {
  int index = 0;
  std::optional<tcp::socket> socket;
  beast::flat_buffer buffer;
  std::string credential;
  std::string enrollment_token;
  std::string heartbeat_body;
  bool ready = false;
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

// A heartbeat as shop-agent sends it: six checks, the full allow-list, a release.
std::string HeartbeatBody(std::mt19937_64& rng) {
  using namespace storeplane;
  protocol::Heartbeat hb;
  hb.agent_version = "0.1.0";
  hb.session = RandomHex(rng, 16);
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

asio::ip::address SourceAddress(const Options& options, int index) {
  const int k = options.source_addresses > 0 ? options.source_addresses : 1 + options.agents / 20'000;
  const int n = 1 + index % std::min(k, 250);
  return asio::ip::make_address_v4("127.0.0." + std::to_string(n));
}

asio::awaitable<tcp::socket> Connect(const Options& options, int index) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket{executor};
  const tcp::endpoint remote{asio::ip::make_address(options.host), options.port};
  socket.open(tcp::v4());
  socket.set_option(tcp::no_delay(true));
  if (options.host.rfind("127.", 0) == 0) socket.bind(tcp::endpoint{SourceAddress(options, index), 0});
  co_await socket.async_connect(remote, asio::use_awaitable);
  co_return socket;
}

// One request on a keep-alive connection; returns the answer.
asio::awaitable<http::response<http::string_body>> Exchange(tcp::socket& socket, beast::flat_buffer& buffer,
                                                            http::verb verb, std::string_view target,
                                                            const std::string& host, const std::string& bearer,
                                                            std::string body) {
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, host);
  if (!bearer.empty()) request.set(http::field::authorization, "Bearer " + bearer);
  request.set(http::field::content_type, "application/json");
  request.body() = std::move(body);
  request.keep_alive(true);
  request.prepare_payload();
  co_await http::async_write(socket, request, asio::use_awaitable);
  http::response<http::string_body> response;
  co_await http::async_read(socket, buffer, response, asio::use_awaitable);
  co_return response;
}

// Operator setup: registers the stores and creates one enrollment token each. `next` is
// the shared cursor of the setup workers (they all run on one thread).
asio::awaitable<void> SetupWorker(const Options& options, std::vector<std::unique_ptr<Agent>>& agents, int& next,
                                  Worker& worker) {
  const std::string host = options.host + ":" + std::to_string(options.port);
  std::optional<tcp::socket> socket;
  beast::flat_buffer buffer;
  while (next < static_cast<int>(agents.size())) {
    Agent& agent = *agents[static_cast<std::size_t>(next++)];
    const std::string id = options.store_prefix + std::to_string(agent.index);
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        if (!socket) socket = co_await Connect(options, 0);
        json::object store{{"id", id}, {"environment", "development"}, {"isolation_mode", "shared"}};
        auto created = co_await Exchange(*socket, buffer, http::verb::post, "/v1/stores", host, options.token,
                                         json::serialize(store));
        if (created.result() != http::status::created && created.result() != http::status::conflict) {
          std::cerr << "POST /v1/stores " << id << ": " << created.result_int() << " " << created.body() << "\n";
          ++worker.setup_errors;
          break;
        }
        auto token = co_await Exchange(*socket, buffer, http::verb::post, "/v1/stores/" + id + "/enrollment-tokens",
                                       host, options.token, "{}");
        if (token.result() != http::status::created) {
          std::cerr << "POST enrollment-tokens " << id << ": " << token.result_int() << " " << token.body() << "\n";
          ++worker.setup_errors;
          break;
        }
        agent.enrollment_token = std::string(json::parse(token.body()).at("token").as_string());
        break;
      } catch (const std::exception& e) {
        socket.reset();  // reconnect and retry this store
        buffer.clear();
        if (attempt == 2) {
          std::cerr << "setup " << id << ": " << e.what() << "\n";
          ++worker.setup_errors;
        }
      }
    }
  }
}

// Opens the agent's connection and, against storeplane, enrolls it.
asio::awaitable<void> ConnectAgent(const Options& options, Agent& agent, Worker& worker) {
  const std::string host = options.host + ":" + std::to_string(options.port);
  try {
    agent.socket.emplace(co_await Connect(options, agent.index));
    if (options.hello) {
      agent.credential = "spa_hello";
      agent.ready = true;
      co_return;
    }
    if (agent.enrollment_token.empty()) co_return;
    storeplane::protocol::EnrollRequest enroll{options.store_prefix + std::to_string(agent.index),
                                               agent.enrollment_token, "0.1.0"};
    auto response = co_await Exchange(*agent.socket, agent.buffer, http::verb::post, "/agent/v1/enroll", host, "",
                                      storeplane::protocol::Encode(enroll));
    if (response.result() != http::status::created) {
      std::cerr << "enroll " << agent.index << ": " << response.result_int() << " " << response.body() << "\n";
      ++worker.setup_errors;
      co_return;
    }
    auto decoded = storeplane::protocol::DecodeEnrollResponse(response.body());
    if (!decoded) {
      ++worker.setup_errors;
      co_return;
    }
    agent.credential = decoded->credential;
    agent.ready = true;
  } catch (const std::exception& e) {
    std::cerr << "connect/enroll " << agent.index << ": " << e.what() << "\n";
    ++worker.io_errors;
  }
}

// The measured closed loop: one heartbeat in flight on the agent's connection.
asio::awaitable<void> HeartbeatLoop(const Options& options, Agent& agent, Worker& worker, Clock::time_point deadline) {
  const std::string host = options.host + ":" + std::to_string(options.port);
  const std::string_view target = options.hello ? "/" : "/agent/v1/heartbeat";
  // The request is built once; only the body is copied into each write.
  http::request<http::string_body> request{http::verb::post, target, 11};
  request.set(http::field::host, host);
  request.set(http::field::authorization, "Bearer " + agent.credential);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::user_agent, "shop-agent/0.1.0");
  request.keep_alive(true);
  request.body() = agent.heartbeat_body;
  request.prepare_payload();
  try {
    while (Clock::now() < deadline) {
      const auto start = Clock::now();
      co_await http::async_write(*agent.socket, request, asio::use_awaitable);
      http::response<http::string_body> response;
      co_await http::async_read(*agent.socket, agent.buffer, response, asio::use_awaitable);
      const auto end = Clock::now();
      if (end > deadline) break;  // answered after the window closed: not counted
      worker.histogram.Record(std::chrono::duration_cast<std::chrono::microseconds>(end - start).count());
      if (response.result_int() / 100 == 2) {
        ++worker.ok;
      } else {
        ++worker.rejected;
        if (response.result() == http::status::too_many_requests) ++worker.throttled;
      }
      if (!response.keep_alive()) {
        ++worker.io_errors;
        break;
      }
    }
  } catch (const std::exception&) {
    ++worker.io_errors;
  }
  boost::system::error_code ec;
  agent.socket->close(ec);
}

void RunAll(std::vector<std::unique_ptr<Worker>>& workers) {
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers.size(); ++i) threads.emplace_back([&, i] { workers[i]->io.run(); });
  workers[0]->io.run();
  for (auto& t : threads) t.join();
  for (auto& w : workers) w->io.restart();
}

void Usage() {
  std::cerr << "usage: bench_agent_swarm --url http://127.0.0.1:PORT [--token ADMIN_TOKEN] [--agents N]\n"
               "         [--seconds D] [--target hello|storeplane] [--threads 1|2] [--source-addresses K]\n"
               "         [--setup-concurrency C] [--store-prefix bench-] [--json FILE]\n";
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

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::string url;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--url" && has_value) {
      url = argv[++i];
    } else if (arg == "--token" && has_value) {
      options.token = argv[++i];
    } else if (arg == "--agents" && has_value) {
      options.agents = std::atoi(argv[++i]);
    } else if (arg == "--seconds" && has_value) {
      options.seconds = std::atof(argv[++i]);
    } else if (arg == "--threads" && has_value) {
      options.threads = std::atoi(argv[++i]);
    } else if (arg == "--source-addresses" && has_value) {
      options.source_addresses = std::atoi(argv[++i]);
    } else if (arg == "--setup-concurrency" && has_value) {
      options.setup_concurrency = std::atoi(argv[++i]);
    } else if (arg == "--store-prefix" && has_value) {
      options.store_prefix = argv[++i];
    } else if (arg == "--json" && has_value) {
      options.json_file = argv[++i];
    } else if (arg == "--target" && has_value) {
      const std::string_view target = argv[++i];
      if (target != "hello" && target != "storeplane") {
        Usage();
        return 2;
      }
      options.hello = target == "hello";
    } else {
      Usage();
      return 2;
    }
  }
  if (!ParseUrl(url, options) || options.agents < 1 || options.seconds <= 0 || options.threads < 1 ||
      options.setup_concurrency < 1 || (!options.hello && options.token.empty())) {
    Usage();
    return 2;
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < options.threads; ++i) workers.push_back(std::make_unique<Worker>());
  std::vector<std::unique_ptr<Agent>> agents;
  std::mt19937_64 rng{std::random_device{}()};
  for (int i = 0; i < options.agents; ++i) {
    auto agent = std::make_unique<Agent>();
    agent->index = i;
    agent->heartbeat_body = HeartbeatBody(rng);
    agents.push_back(std::move(agent));
  }
  auto worker_of = [&](int index) -> Worker& { return *workers[static_cast<std::size_t>(index % options.threads)]; };

  // 1. Operator setup (storeplane only): stores and enrollment tokens.
  const auto setup_start = Clock::now();
  if (!options.hello) {
    int next = 0;
    for (int c = 0; c < options.setup_concurrency; ++c) {
      asio::co_spawn(workers[0]->io, SetupWorker(options, agents, next, *workers[0]), asio::detached);
    }
    RunAll(workers);
  }
  const double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

  // 2. Every agent connects (and enrolls) on its own connection.
  const auto connect_start = Clock::now();
  for (auto& agent : agents) {
    Worker& worker = worker_of(agent->index);
    asio::co_spawn(worker.io, ConnectAgent(options, *agent, worker), asio::detached);
  }
  RunAll(workers);
  const double connect_s = std::chrono::duration<double>(Clock::now() - connect_start).count();
  int ready = 0;
  for (auto& agent : agents) ready += agent->ready ? 1 : 0;
  std::cerr << "bench_agent_swarm: " << ready << "/" << options.agents << " agents ready (setup " << setup_s
            << " s, connect+enroll " << connect_s << " s)\n";
  if (ready == 0) return 1;

  // 3. The measured window.
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds));
  for (auto& agent : agents) {
    if (!agent->ready) continue;
    Worker& worker = worker_of(agent->index);
    asio::co_spawn(worker.io, HeartbeatLoop(options, *agent, worker, deadline), asio::detached);
  }
  RunAll(workers);
  const double elapsed = std::chrono::duration<double>(std::max(Clock::now(), deadline) - start).count();
  const double window = std::min(elapsed, options.seconds);

  Worker total;
  for (auto& w : workers) {
    total.histogram.Merge(w->histogram);
    total.ok += w->ok;
    total.rejected += w->rejected;
    total.throttled += w->throttled;
    total.io_errors += w->io_errors;
    total.setup_errors += w->setup_errors;
  }
  auto ms = [](std::int64_t us) { return static_cast<double>(us) / 1000.0; };
  json::object result{
      {"target", options.hello ? "hello" : "storeplane"},
      {"agents", options.agents},
      {"agents_ready", ready},
      {"seconds", window},
      {"threads", options.threads},
      {"requests_ok", total.ok},
      {"requests_rejected", total.rejected},
      {"requests_throttled", total.throttled},
      {"io_errors", total.io_errors},
      {"setup_errors", total.setup_errors},
      {"requests_per_s", static_cast<double>(total.ok) / window},
      {"p50_ms", ms(total.histogram.Quantile(0.50))},
      {"p90_ms", ms(total.histogram.Quantile(0.90))},
      {"p99_ms", ms(total.histogram.Quantile(0.99))},
      {"p999_ms", ms(total.histogram.Quantile(0.999))},
      {"max_ms", ms(total.histogram.max_us())},
      {"setup_s", setup_s},
      {"connect_s", connect_s},
  };
  const std::string text = json::serialize(result);
  std::cout << text << std::endl;
  if (!options.json_file.empty()) {
    std::ofstream out{options.json_file};
    out << text << "\n";
  }
  return total.ok > 0 ? 0 : 1;
}
