#include "tests/integration/fake_ci.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <sstream>

namespace storeplane::testing {

FakeCi::FakeCi() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(fd_, 64);
  socklen_t len = sizeof addr;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

FakeCi::~FakeCi() {
  stopping_ = true;
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  thread_.join();
}

void FakeCi::OnTrigger(std::function<void(const Trigger&)> hook) {
  std::lock_guard lock(mu_);
  hook_ = std::move(hook);
}

std::optional<FakeCi::Trigger> FakeCi::WaitTrigger(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return triggers_.size() >= n; })) return std::nullopt;
  return triggers_[n - 1];
}

std::size_t FakeCi::count() {
  std::lock_guard lock(mu_);
  return triggers_.size();
}

std::vector<FakeCi::Trigger> FakeCi::all() {
  std::lock_guard lock(mu_);
  return triggers_;
}

void FakeCi::Serve() {
  while (!stopping_) {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    std::string data;
    char buf[4096];
    std::size_t header_end = std::string::npos;
    std::size_t length = 0;
    while (true) {
      const auto n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
      if (header_end == std::string::npos) {
        header_end = data.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          std::string lower = data.substr(0, header_end);
          for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          const auto cl = lower.find("content-length:");
          if (cl != std::string::npos) length = std::stoul(lower.substr(cl + 15));
        }
      }
      if (header_end != std::string::npos && data.size() >= header_end + 4 + length) break;
    }
    Trigger t;
    std::string request_line;
    if (header_end != std::string::npos) request_line = data.substr(0, data.find("\r\n"));
    // Find: GET <base>/runs/<correlation id> answers whether that run was triggered.
    if (request_line.rfind("GET /trigger/runs/", 0) == 0) {
      const auto id = request_line.substr(18, request_line.find(' ', 18) - 18);
      bool known = false;
      {
        std::lock_guard lock(mu_);
        for (const auto& seen : triggers_) known = known || seen.body.find("\"" + id + "\"") != std::string::npos;
      }
      const std::string answer = known ? "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n"
                                         "Connection: close\r\n\r\n{\"status\":\"queued\"}"
                                       : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)::write(c, answer.data(), answer.size());
      ::close(c);
      continue;
    }
    if (header_end == std::string::npos || data.size() < header_end + 4 + length) {
      ::close(c);  // cut off mid-request (the sender was killed): never received
      continue;
    }
    {
      std::istringstream lines(data.substr(0, header_end));
      std::string line;
      std::getline(lines, line);
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        t.headers[name] = value;
      }
      t.body = data.substr(header_end + 4);
    }
    t.received_at_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const std::string answer =
        "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n{}";
    (void)::write(c, answer.data(), answer.size());
    ::close(c);
    std::function<void(const Trigger&)> hook;
    {
      std::lock_guard lock(mu_);
      triggers_.push_back(t);
      hook = hook_;
    }
    cv_.notify_all();
    if (hook) hook(t);
  }
}

}  // namespace storeplane::testing
