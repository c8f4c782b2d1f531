#include "server/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "server/beast_pch.h"
#include "server/logging.h"
#include "server/problem.h"

namespace storeplane::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// A connection's entry in the registry, so that shutdown can close idle ones.
struct Connection {
  std::function<void()> close;  // cancels the connection's pending read
  std::function<void()> wake;   // ends a deferred answer's wait (long-poll), when one is pending
  bool idle = true;             // waiting for the next request
};

}  // namespace

struct HttpServer::Impl {
  // Declaration order is destruction order in reverse: the io_context (and with it any
  // coroutine frame still suspended) goes before the registry those frames touch.
  const Config& config;
  App& app;
  std::mutex connections_mu;
  std::list<Connection> connections;
  std::unique_ptr<ssl::context> tls;
  std::string url;
  std::atomic<int> in_flight{0};
  std::atomic<int> open_streams{0};  // streamed answers not yet ended; drain lets them say goodbye
  std::atomic<bool> stopping{false};
  asio::thread_pool workers;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};

  Impl(const Config& c, App& a) : config(c), app(a), workers(static_cast<std::size_t>(c.worker_threads)), ioc(1) {}

  asio::awaitable<void> Accept();
  template <typename Stream>
  asio::awaitable<void> Serve(Stream& stream, tcp::socket::lowest_layer_type& socket, std::string remote);
  enum class WaitEnd { kTimeUp, kWoken, kClientSent, kClientGone };
  template <typename Stream>
  asio::awaitable<WaitEnd> WaitOnIoThread(Stream& stream, beast::flat_buffer& buffer,
                                          std::list<Connection>::iterator self, Wakeup& wake,
                                          std::chrono::steady_clock::time_point until);
  template <typename Stream>
  asio::awaitable<void> WriteStream(Stream& stream, beast::flat_buffer& buffer, std::list<Connection>::iterator self,
                                    Response& response, unsigned version);
  asio::awaitable<void> Drain();
};

HttpServer::HttpServer(const Config& config, App& app) : impl_(std::make_unique<Impl>(config, app)) {}
HttpServer::~HttpServer() { impl_->workers.join(); }

std::string HttpServer::url() const { return impl_->url; }

Status HttpServer::Listen() {
  auto& d = *impl_;
  const auto colon = d.config.listen.rfind(':');
  std::string host = d.config.listen.substr(0, colon);
  const std::string port = d.config.listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (d.config.tls.enabled()) {
    d.tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    d.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    d.tls->use_certificate_chain_file(d.config.tls.cert_file, ec);
    if (ec) return Error::Invalid("tls.cert_file " + d.config.tls.cert_file + ": " + ec.message());
    d.tls->use_private_key_file(d.config.tls.key_file, ssl::context::pem, ec);
    if (ec) return Error::Invalid("tls.key_file " + d.config.tls.key_file + ": " + ec.message());
  }
  boost::system::error_code ec;
  tcp::resolver resolver(d.ioc);
  auto results = resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) return Error::Invalid("cannot resolve listen address '" + d.config.listen + "'");
  const auto endpoint = results.begin()->endpoint();
  d.acceptor.open(endpoint.protocol(), ec);
  if (!ec) d.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) d.acceptor.bind(endpoint, ec);
  if (!ec) d.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{ErrorCode::kUnavailable, "cannot listen on " + d.config.listen + ": " + ec.message(), {}};
  const auto bound = d.acceptor.local_endpoint();
  std::string shown = bound.address().to_string();
  if (bound.address().is_v6()) shown = "[" + shown + "]";
  d.url = std::string(d.tls ? "https" : "http") + "://" + shown + ":" + std::to_string(bound.port());
  return Status::Ok();
}

void HttpServer::Run(const std::function<void()>& on_ready, std::function<void()> on_reload) {
  auto& d = *impl_;
  asio::signal_set hangups(d.ioc, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hangup = [&](const boost::system::error_code& ec, int) {
    if (ec || d.stopping) return;
    if (on_reload) asio::post(d.workers, on_reload);
    hangups.async_wait(on_hangup);
  };
  hangups.async_wait(on_hangup);
  asio::signal_set signals(d.ioc, SIGTERM, SIGINT);
  signals.async_wait([&d](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log::Info("shutting down", {{"signal", signo}, {"in_flight", d.in_flight.load()}});
    asio::co_spawn(d.ioc, d.Drain(), asio::detached);
  });
  asio::co_spawn(d.ioc, d.Accept(), asio::detached);
  on_ready();
  d.ioc.run();
}

asio::awaitable<void> HttpServer::Impl::Drain() {
  stopping = true;
  app.SetDraining();
  boost::system::error_code ignored;
  acceptor.close(ignored);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.limits.shutdown_grace_ms);
  asio::steady_timer timer(ioc);
  for (;;) {
    {
      std::lock_guard lock(connections_mu);
      for (auto& c : connections) {
        if (c.idle) c.close();
        if (c.wake) c.wake();
      }
    }
    if ((in_flight.load() == 0 && open_streams.load() == 0) || std::chrono::steady_clock::now() >= deadline) break;
    timer.expires_after(10ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  const int abandoned = in_flight.load();
  // Whatever is left (responses being written, stalled clients) is cut off now; give the
  // connections a moment to unwind so that they close their sockets themselves.
  const auto unwind_deadline = std::chrono::steady_clock::now() + 1s;
  for (;;) {
    {
      std::lock_guard lock(connections_mu);
      if (connections.empty()) break;
      for (auto& c : connections) c.close();
    }
    if (std::chrono::steady_clock::now() >= unwind_deadline) break;
    timer.expires_after(10ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  log::Info("stopped", {{"abandoned_requests", abandoned}});
  ioc.stop();
}

asio::awaitable<void> HttpServer::Impl::Accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) co_return;
      log::Warn("accept failed", {{"error", ec.message()}});
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto remote_ep = socket.remote_endpoint(ignored);
    std::string remote = remote_ep.address().to_string() + ":" + std::to_string(remote_ep.port());
    auto executor = socket.get_executor();
    if (tls) {
      asio::co_spawn(
          executor,
          [this, s = std::move(socket), remote]() mutable -> asio::awaitable<void> {
            beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(s)), *tls);
            beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds(config.limits.read_timeout_ms));
            auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
            if (hec) co_return;
            co_await Serve(stream, beast::get_lowest_layer(stream).socket(), remote);
            beast::get_lowest_layer(stream).expires_after(1s);
            co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
          },
          asio::detached);
    } else {
      asio::co_spawn(
          executor,
          [this, s = std::move(socket), remote]() mutable -> asio::awaitable<void> {
            beast::tcp_stream stream(std::move(s));
            co_await Serve(stream, stream.socket(), remote);
            boost::system::error_code ignored_ec;
            stream.socket().shutdown(tcp::socket::shutdown_send, ignored_ec);
          },
          asio::detached);
    }
  }
}

namespace {

Request ToRequest(http::request<http::string_body>&& msg, std::string remote) {
  Request req;
  req.method = std::string(msg.method_string());
  const std::string_view target = msg.target();
  const auto q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  for (const auto& field : msg) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers[name] = std::string(field.value());
  }
  req.body = std::move(msg.body());
  req.remote = std::move(remote);
  return req;
}

http::response<http::string_body> ToBeast(Response&& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> msg{static_cast<http::status>(r.status), version};
  msg.set(http::field::server, "storeplaned");
  if (!r.content_type.empty()) msg.set(http::field::content_type, r.content_type);
  // Defaults that a handler's own header replaces (the web UI's files are revalidated with
  // their ETag instead of never stored); every other header is added as the handler gives it.
  msg.set(http::field::cache_control, "no-store");
  msg.set("X-Content-Type-Options", "nosniff");
  for (auto& [name, value] : r.headers) {
    if (beast::iequals(name, "Cache-Control") || beast::iequals(name, "X-Content-Type-Options")) {
      msg.set(name, value);
    } else {
      msg.insert(name, value);
    }
  }
  msg.body() = std::move(r.body);
  msg.keep_alive(keep_alive && !r.close);
  msg.prepare_payload();
  return msg;
}

}  // namespace

namespace {

// After answering a request that was refused before its body was read (413, 431, a
// malformed message), the client may still be sending. Closing at once would make the
// kernel reset the connection, and the client would see "broken pipe" instead of the
// answer. So read and discard what is still coming, up to a cap and a short deadline,
// and only then close ("lingering close").
template <typename Stream>
asio::awaitable<void> DiscardUnreadInput(Stream& stream, beast::tcp_stream& lowest) {
  constexpr std::size_t kMaxDiscardBytes = 64U << 20;
  lowest.expires_after(2s);
  std::array<char, 16384> sink{};
  std::size_t discarded = 0;
  while (discarded < kMaxDiscardBytes) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
    if (ec || n == 0) break;
    discarded += n;
  }
}

}  // namespace

template <typename Stream>
asio::awaitable<void> HttpServer::Impl::Serve(Stream& stream, tcp::socket::lowest_layer_type& socket,
                                              std::string remote) {
  auto& lowest = beast::get_lowest_layer(stream);
  std::list<Connection>::iterator self;
  {
    std::lock_guard lock(connections_mu);
    connections.push_front(Connection{});
    self = connections.begin();
    // Called by Drain under connections_mu on the single I/O thread, while this
    // connection is still registered, so the socket is alive.
    self->close = [&socket] {
      boost::system::error_code ignored;
      socket.cancel(ignored);
    };
  }
  struct Unregister {
    Impl* impl;
    std::list<Connection>::iterator it;
    ~Unregister() {
      std::lock_guard lock(impl->connections_mu);
      impl->connections.erase(it);
    }
  } unregister{this, self};

  auto set_idle = [&](bool idle) {
    std::lock_guard lock(connections_mu);
    self->idle = idle;
  };

  beast::flat_buffer buffer;
  const auto& limits = config.limits;
  for (;;) {
    if (stopping) co_return;
    // Wait for the first bytes of the next request under the idle timeout, then give the
    // whole request the read timeout.
    if (buffer.size() == 0) {
      set_idle(true);
      lowest.expires_after(std::chrono::milliseconds(limits.idle_timeout_ms));
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), asio::as_tuple(asio::use_awaitable));
      if (ec || n == 0) co_return;
      buffer.commit(n);
    }
    set_idle(false);
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits.body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(limits.header_bytes));
    lowest.expires_after(std::chrono::milliseconds(limits.read_timeout_ms));
    auto [rec, bytes] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)bytes;
    // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no
    // knowable length. Beast reads it as bodiless, so its body would be parsed as the next
    // request (a smuggling vector behind a proxy): refuse it and close instead.
    if (!rec && parser.get().count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
      rec = http::error::bad_transfer_encoding;
    }
    // A header that carries one value (who is calling, what the body is, which version or
    // retry it is) must not come twice: which copy wins would be a guess, and a guess about
    // Authorization is not one to make. Refused as malformed, and the connection closed.
    bool repeated = false;
    if (!rec) {
      const auto& fields = parser.get();
      for (auto name :
           {http::field::authorization, http::field::content_type, http::field::if_match, http::field::host}) {
        repeated = repeated || fields.count(name) > 1;
      }
      repeated = repeated || fields.count("Idempotency-Key") > 1 || fields.count("X-Request-Id") > 1;
      if (repeated) rec = http::error::bad_field;
    }
    if (rec) {
      if (rec == http::error::end_of_stream || rec == beast::error::timeout || rec == asio::error::operation_aborted ||
          rec == asio::error::connection_reset || rec == asio::error::eof) {
        co_return;
      }
      Error err{ErrorCode::kMalformedRequest,
                repeated ? "a header that takes one value was sent more than once"
                         : "the request could not be parsed as HTTP/1.1",
                {}};
      ProblemKind kind = ProblemKind::kFromErrorCode;
      if (rec == http::error::body_limit) {
        err = Error{ErrorCode::kPayloadTooLarge,
                    "the request body exceeds " + std::to_string(limits.body_bytes) + " bytes",
                    {}};
      } else if (rec == http::error::header_limit) {
        err = Error{ErrorCode::kMalformedRequest, "the request headers are too large", {}};
        kind = ProblemKind::kHeadersTooLarge;
      }
      Request partial;
      if (parser.is_header_done()) {
        partial = ToRequest(parser.release(), remote);
      }
      const auto request_id = App::RequestIdFor(partial);
      auto resp = ProblemResponse(err, partial.path, request_id, kind);
      resp.SetHeader("X-Request-Id", request_id);
      log::Info("request rejected",
                {{"request_id", request_id}, {"status", resp.status}, {"remote", remote}, {"error", rec.message()}});
      auto msg = ToBeast(std::move(resp), 11, false);
      lowest.expires_after(std::chrono::milliseconds(limits.read_timeout_ms));
      auto [wec, wn] = co_await http::async_write(stream, msg, asio::as_tuple(asio::use_awaitable));
      (void)wn;
      if (!wec) co_await DiscardUnreadInput(stream, lowest);
      co_return;
    }

    auto msg = parser.release();
    const unsigned version = msg.version();
    const bool keep_alive = msg.keep_alive();
    auto request = ToRequest(std::move(msg), remote);

    Response response;
    if (in_flight.fetch_add(1) >= limits.max_in_flight) {
      const auto request_id = App::RequestIdFor(request);
      response = ProblemResponse(Error{ErrorCode::kResourceExhausted, "the server is at capacity; retry shortly", {}},
                                 request.path, request_id);
      response.SetHeader("X-Request-Id", request_id);
    } else if (app.RunsOnIoThread(request)) {
      // Memory-only routes (heartbeats) skip the two thread switches of the hand-off; what
      // little blocking work they leave (a change of health to write) goes to a worker.
      response = app.HandleOnIoThread(request);
      if (response.finish_on_worker) {
        // Captured by reference, like the request above: a by-value capture in this
        // temporary coroutine lambda was destroyed twice (a crash seen with GCC 12).
        const auto finish = std::move(response.finish_on_worker);
        lowest.expires_never();
        co_await asio::co_spawn(
            workers,
            [&finish]() -> asio::awaitable<void> {
              finish();
              co_return;
            },
            asio::use_awaitable);
      }
    } else {
      lowest.expires_never();
      response = co_await asio::co_spawn(
          workers, [this, &request]() -> asio::awaitable<Response> { co_return app.Handle(request); },
          asio::use_awaitable);
    }
    in_flight.fetch_sub(1);

    // A deferred answer (an agent's long-poll) waits here on the I/O thread, holding no
    // worker and not counting as in flight, until its wake-up fires, its time is up, the
    // server drains or the client goes away; then the handler runs again and decides.
    // Wake-ups that find nothing never stretch the wait past the first deadline.
    std::optional<std::chrono::steady_clock::time_point> wait_deadline;
    while (response.wait) {
      const auto now = std::chrono::steady_clock::now();
      const auto asked = now + std::chrono::milliseconds(std::max<std::int64_t>(0, response.wait_ms));
      if (!wait_deadline) wait_deadline = asked;
      // Reading meanwhile tells a client that hung up (it must not be handed operations)
      // from one that is still there; bytes of a pipelined request are kept.
      const auto end = co_await WaitOnIoThread(stream, buffer, self, *response.wait, std::min(*wait_deadline, asked));
      if (end == WaitEnd::kClientGone) co_return;  // nothing to answer
      const bool expired = end == WaitEnd::kTimeUp;
      request.wait_expired = expired || stopping || std::chrono::steady_clock::now() >= *wait_deadline;
      in_flight.fetch_add(1);
      response = co_await asio::co_spawn(
          workers, [this, &request]() -> asio::awaitable<Response> { co_return app.Handle(request); },
          asio::use_awaitable);
      in_flight.fetch_sub(1);
      if (request.wait_expired) response.wait.reset();  // never wait past the deadline
    }

    if (response.stream) {
      co_await WriteStream(stream, buffer, self, response, version);
      co_return;
    }

    auto out = ToBeast(std::move(response), version, keep_alive && !stopping);
    const bool close = !out.keep_alive();
    lowest.expires_after(std::chrono::milliseconds(limits.read_timeout_ms));
    auto [wec, wn] = co_await http::async_write(stream, out, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    if (wec || close) co_return;
  }
}

// A streamed answer (the event stream): the head at once, then each piece as a chunk, until
// the stream ends, the client goes or the server drains; the connection then closes.
// Between pieces it waits like a long-poll: no worker held, not counted as in flight.
template <typename Stream>
asio::awaitable<void> HttpServer::Impl::WriteStream(Stream& stream, beast::flat_buffer& buffer,
                                                    std::list<Connection>::iterator self, Response& response,
                                                    unsigned version) {
  auto& lowest = beast::get_lowest_layer(stream);
  const auto write_timeout = std::chrono::milliseconds(config.limits.read_timeout_ms);
  std::shared_ptr<ResponseStream> source = std::move(response.stream);
  open_streams.fetch_add(1);
  struct Ended {
    std::atomic<int>& count;
    ~Ended() { count.fetch_sub(1); }
  } ended{open_streams};
  http::response<http::empty_body> head{static_cast<http::status>(response.status), version};
  head.set(http::field::server, "storeplaned");
  if (!response.content_type.empty()) head.set(http::field::content_type, response.content_type);
  head.set(http::field::cache_control, "no-store");
  head.set("X-Content-Type-Options", "nosniff");
  for (auto& [name, value] : response.headers) head.insert(name, value);
  head.keep_alive(false);
  head.chunked(true);
  http::response_serializer<http::empty_body> serializer{head};
  lowest.expires_after(write_timeout);
  auto [hec, hn] = co_await http::async_write_header(stream, serializer, asio::as_tuple(asio::use_awaitable));
  (void)hn;
  if (hec) co_return;

  bool idle = false;
  for (;;) {
    bool draining = stopping.load();
    in_flight.fetch_add(1);
    // Captured by reference: see the note on finish_on_worker in Serve.
    auto piece = co_await asio::co_spawn(
        workers,
        [&source, &idle, &draining]() -> asio::awaitable<ResponseStream::Piece> {
          co_return source->Next(idle, draining);
        },
        asio::use_awaitable);
    in_flight.fetch_sub(1);
    if (!piece.data.empty()) {
      lowest.expires_after(write_timeout);  // a client that stops reading is cut off
      auto [wec, wn] = co_await asio::async_write(stream, http::make_chunk(asio::buffer(piece.data)),
                                                  asio::as_tuple(asio::use_awaitable));
      (void)wn;
      if (wec) co_return;
    }
    if (piece.end || draining) {
      lowest.expires_after(write_timeout);
      co_await asio::async_write(stream, http::make_chunk_last(), asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    idle = false;
    if (!piece.wait) continue;  // more to send at once

    lowest.expires_never();
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<std::int64_t>(1, source->idle_ms()));
    const auto end = co_await WaitOnIoThread(stream, buffer, self, *piece.wait, until);
    if (end == WaitEnd::kClientGone) co_return;
    if (end == WaitEnd::kClientSent) buffer.consume(buffer.size());  // a stream's client has nothing to say
    idle = end == WaitEnd::kTimeUp;
  }
}

// Waits on the I/O thread, holding no worker, until `wake` fires, `until` passes, the
// server drains (which fires the connection's wake), or the client sends something or
// hangs up. What the client sent is committed to `buffer`.
template <typename Stream>
asio::awaitable<HttpServer::Impl::WaitEnd> HttpServer::Impl::WaitOnIoThread(
    Stream& stream, beast::flat_buffer& buffer, std::list<Connection>::iterator self, Wakeup& wake,
    std::chrono::steady_clock::time_point until) {
  auto timer = std::make_shared<asio::steady_timer>(stream.get_executor());
  timer->expires_at(until);
  std::weak_ptr<asio::steady_timer> weak = timer;
  auto cancel = [weak, executor = stream.get_executor()] {
    asio::post(executor, [weak] {
      if (auto t = weak.lock()) t->cancel();
    });
  };
  wake.OnFire(cancel);
  {
    std::lock_guard lock(connections_mu);
    self->wake = cancel;
  }
  if (stopping) cancel();
  auto outcome = co_await (timer->async_wait(asio::as_tuple(asio::use_awaitable)) ||
                           stream.async_read_some(buffer.prepare(4096), asio::as_tuple(asio::use_awaitable)));
  {
    std::lock_guard lock(connections_mu);
    self->wake = nullptr;
  }
  if (outcome.index() == 1) {
    auto [rec, n] = std::get<1>(outcome);
    if (rec || n == 0) co_return WaitEnd::kClientGone;
    buffer.commit(n);
    co_return WaitEnd::kClientSent;
  }
  auto [tec] = std::get<0>(outcome);
  co_return tec ? WaitEnd::kWoken : WaitEnd::kTimeUp;
}

}  // namespace storeplane::server
