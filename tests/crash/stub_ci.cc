#include "tests/crash/stub_ci.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <sstream>

#include "client/http_client.h"
#include "core/callback_signature.h"

namespace storeplane::crash {
namespace {

namespace json = boost::json;

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Lower(std::string text) {
  for (auto& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}

void WriteAll(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

std::string Answer(int status, const std::string& reason, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

StubCi::StubCi(std::string trigger_secret, std::string callback_secret, std::uint64_t seed)
    : trigger_secret_(std::move(trigger_secret)), callback_secret_(std::move(callback_secret)), rng_(seed) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  server_thread_ = std::thread([this] { Serve(); });
  pipeline_thread_ = std::thread([this] { RunPipelines(); });
}

StubCi::~StubCi() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  server_thread_.join();
  pipeline_thread_.join();
}

std::string StubCi::base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/trigger"; }

void StubCi::SetCallbackUrl(const std::string& url) {
  std::lock_guard lock(mu_);
  callback_url_ = url;
}

void StubCi::OnSuccess(std::function<void(const Pipeline&)> hook) {
  std::lock_guard lock(mu_);
  on_success_ = std::move(hook);
}

StubCi::Counts StubCi::counts() {
  std::lock_guard lock(mu_);
  return counts_;
}

std::map<std::string, int> StubCi::trigger_counts() {
  std::lock_guard lock(mu_);
  return triggers_;
}

std::vector<StubCi::Pipeline> StubCi::pipelines() {
  std::lock_guard lock(mu_);
  std::vector<Pipeline> all;
  for (const auto& [id, p] : pipelines_) all.push_back(p);
  return all;
}

std::vector<std::string> StubCi::problems() {
  std::lock_guard lock(mu_);
  return problems_;
}

void StubCi::Serve() {
  while (!stopping_) {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (stopping_) return;
      continue;
    }
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    Handle(fd);
    ::close(fd);
  }
}

void StubCi::Handle(int fd) {
  std::string data;
  char buf[4096];
  std::size_t header_end = std::string::npos;
  std::size_t length = 0;
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        const auto lower = Lower(data.substr(0, header_end));
        const auto cl = lower.find("content-length:");
        if (cl != std::string::npos) length = std::stoul(lower.substr(cl + 15));
      }
    }
    if (header_end != std::string::npos && data.size() >= header_end + 4 + length) break;
  }
  // Cut off mid-request (the sender was killed): never received.
  if (header_end == std::string::npos || data.size() < header_end + 4 + length) return;

  std::map<std::string, std::string> headers;
  std::istringstream lines(data.substr(0, header_end));
  std::string request_line;
  std::getline(lines, request_line);
  if (!request_line.empty() && request_line.back() == '\r') request_line.pop_back();
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    headers[Lower(line.substr(0, colon))] = value;
  }
  const std::string body = data.substr(header_end + 4, length);

  // Find: GET /trigger/runs/<correlation id>.
  constexpr std::string_view kFind = "GET /trigger/runs/";
  if (request_line.rfind(kFind, 0) == 0) {
    const auto start = kFind.size();
    const auto id = request_line.substr(start, request_line.find(' ', start) - start);
    std::string answer;
    {
      std::lock_guard lock(mu_);
      ++counts_.finds;
      auto it = pipelines_.find(id);
      if (it == pipelines_.end()) {
        answer = Answer(404, "Not Found", "{}");
      } else {
        json::object status{{"status", it->second.status}, {"external_id", "ext-" + id}};
        answer = Answer(200, "OK", json::serialize(status));
      }
    }
    WriteAll(fd, answer);
    return;
  }
  if (request_line.rfind("POST /trigger ", 0) != 0) {
    WriteAll(fd, Answer(404, "Not Found", "{}"));
    return;
  }

  core::SignatureCheck check;
  check.secrets = {trigger_secret_};
  check.timestamp_header = headers["x-storeplane-timestamp"];
  check.signature_header = headers["x-storeplane-signature"];
  check.body = body;
  check.now_ms = NowMs();
  const bool signed_ok = core::VerifySignature(check).ok();
  boost::system::error_code ec;
  auto parsed = json::parse(body, ec);
  if (!signed_ok || ec || !parsed.is_object() || !parsed.as_object().contains("correlation_id")) {
    {
      std::lock_guard lock(mu_);
      if (!signed_ok) ++counts_.bad_signatures;
      problems_.push_back("stub CI: refused trigger (" + std::string(signed_ok ? "malformed" : "bad signature") +
                          "): " + body);
    }
    WriteAll(fd, Answer(401, "Unauthorized", "{}"));
    return;
  }
  const auto& facts = parsed.as_object();
  auto text = [&](const char* key) {
    auto it = facts.find(key);
    return it != facts.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
  };
  const std::string id = text("correlation_id");
  int answer_delay_ms = 0;
  {
    std::lock_guard lock(mu_);
    answer_delay_ms = static_cast<int>(rng_() % 60);
    ++counts_.triggers;
    const int n = ++triggers_[id];
    if (n == 1) ++counts_.runs;
    if (n == 2) ++counts_.duplicates;
    if (n == 1) {
      Pipeline p;
      p.correlation_id = id;
      p.store_id = text("store_id");
      p.kind = text("kind");
      p.release = text("release");
      p.accepted_ms = NowMs();
      p.running_at_ms = p.accepted_ms + static_cast<std::int64_t>(rng_() % 300);
      p.done_at_ms = p.running_at_ms + 100 + static_cast<std::int64_t>(rng_() % 1200);
      p.outcome = rng_() % 100 < 15 ? "failed" : "succeeded";
      p.silent = rng_() % 100 < 30;
      pipelines_[id] = p;
    }
  }
  // Answer after a moment: a kill then falls more often between "the provider has it" and
  // "the control plane recorded that", the window the ask-before-resend check is for.
  std::this_thread::sleep_for(std::chrono::milliseconds(answer_delay_ms));
  WriteAll(fd, Answer(202, "Accepted", json::serialize(json::object{{"external_id", "ext-" + id}})));
}

bool StubCi::SendCallback(const Pipeline& p, const std::string& status, const std::string& delivery) {
  std::string url;
  {
    std::lock_guard lock(mu_);
    url = callback_url_;
  }
  if (url.empty()) return false;
  const std::string body = json::serialize(json::object{
      {"correlation_id", p.correlation_id}, {"status", status}, {"external_id", "ext-" + p.correlation_id}});
  const auto ts = NowMs() / 1000;
  client::HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.body = body;
  req.timeout_ms = 3000;
  req.headers = {{"Content-Type", "application/json"},
                 {std::string(core::kTimestampHeader), std::to_string(ts)},
                 {std::string(core::kSignatureHeader), core::SignPayload(callback_secret_, ts, body)},
                 {std::string(core::kDeliveryHeader), delivery}};
  auto resp = callback_http_->Send(req);  // one connection, kept alive between callbacks
  if (!resp.ok()) return false;
  std::lock_guard lock(mu_);
  if (resp->status == 200) {
    ++counts_.callbacks_ok;
    return true;
  }
  if (resp->status == 409) {
    ++counts_.callbacks_dup;
    return true;
  }
  return false;  // a 5xx while the server starts or stops: try again
}

void StubCi::RunPipelines() {
  callback_http_ = std::make_unique<client::HttpClient>();
  while (!stopping_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = NowMs();
    std::vector<Pipeline> due;
    std::function<void(const Pipeline&)> hook;
    {
      std::lock_guard lock(mu_);
      hook = on_success_;
      for (auto& [id, p] : pipelines_) {
        if (p.outcome_sent || p.callback_attempts >= 12 || now < p.next_callback_ms) continue;
        if (now >= p.running_at_ms && p.status == "queued") p.status = "running";
        if (now >= p.done_at_ms && p.status == "running") {
          if (p.outcome == "succeeded" && hook) hook(p);
          p.status = p.outcome;
        }
        if (p.silent) continue;
        if ((p.status == "running" && !p.running_sent) || (p.status == p.outcome && !p.outcome_sent)) {
          due.push_back(p);
        }
      }
    }
    for (const auto& p : due) {
      if (stopping_) return;
      const bool final = p.status == p.outcome;
      const std::string status = final ? p.outcome : "running";
      // The running report is skipped once the outcome is known (a pipeline may report only its end).
      const bool ok = SendCallback(p, status, "cb-" + p.correlation_id + (final ? "-end" : "-run"));
      std::lock_guard lock(mu_);
      auto& stored = pipelines_[p.correlation_id];
      if (ok) {
        (final ? stored.outcome_sent : stored.running_sent) = true;
        if (final) stored.running_sent = true;
        stored.callback_attempts = 0;
      } else {
        ++stored.callback_attempts;  // the control plane is down; after 12 tries, polling finds it
        stored.next_callback_ms = NowMs() + 250;
      }
    }
  }
}

}  // namespace storeplane::crash
