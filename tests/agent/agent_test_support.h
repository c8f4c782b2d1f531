// Helpers for the shop agent's tests: temporary directories, a private copy of the fake
// Magento (tests/support/fake_magento), small file utilities, and a loopback HTTP server
// that answers with canned replies and records what it was sent.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_config.h"

namespace storeplane::agent::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "shop-agent-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Copies tests/support/fake_magento to `dir`/magento (modes kept) without any state a
// previous run may have left in the source directory.
inline std::string CopyFakeMagento(const TempDir& dir) {
  const auto root = dir.path() / "magento";
  std::filesystem::copy(FAKE_MAGENTO_DIR, root, std::filesystem::copy_options::recursive);
  for (const char* leftover : {"var/argv.log", "var/.maintenance.flag", "var/fake-hang", "var/fake-fail",
                               "var/fake-db-outdated", "var/.storeplane-cron"}) {
    std::filesystem::remove(root / leftover);
  }
  return root.string();
}

// The comm (process name) of this test binary, as the fake php sees its parent's.
inline std::string OwnComm() {
  std::string comm = ReadFile("/proc/self/comm");
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

// A configuration for a fake Magento copy at `magento_root`; every operation allowed.
inline AgentConfig FakeStoreConfig(const std::string& magento_root, const std::string& state_dir) {
  AgentConfig config;
  config.control_plane_url = "http://127.0.0.1:1";
  config.store_id = "demo";
  config.credential_file = state_dir + "/credential";
  config.state_dir = state_dir;
  config.magento_root = magento_root;
  config.php_binary = magento_root + "/php";
  config.isolation_mode = core::IsolationMode::kShared;
  config.allowed_operations = core::AllOperationNames();
  return config;
}

// One request as the fake control plane saw it.
struct SeenRequest {
  std::string method;
  std::string target;  // path and query
  std::string authorization;
  std::string content_type;
  std::string body;
};

struct CannedReply {
  int status = 200;
  std::string body;
  bool hang = false;  // never answer (until the server stops)
};

// A loopback HTTP/1.1 server, one thread per connection, "Connection: close" replies. The
// handler chooses the reply for each request.
class FakeHttpServer {
 public:
  using Handler = std::function<CannedReply(const SeenRequest&)>;

  explicit FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0) {
      throw std::runtime_error("cannot listen on loopback");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeHttpServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mutex_);
      workers.swap(workers_);
    }
    cv_.notify_all();
    for (auto& worker : workers) worker.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  // Waits until a request satisfying `match` was seen.
  bool WaitFor(const std::function<bool(const SeenRequest&)>& match, std::chrono::milliseconds timeout) {
    return WaitUntil(
        [&match](const std::vector<SeenRequest>& seen) {
          for (const auto& r : seen) {
            if (match(r)) return true;
          }
          return false;
        },
        timeout);
  }

  // Waits until `done` holds for all the requests seen so far (called under the lock).
  bool WaitUntil(const std::function<bool(const std::vector<SeenRequest>&)>& done, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return done(seen_); });
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mutex_);
      workers_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  static std::string HeaderValue(const std::string& head, const std::string& lower_name) {
    for (const auto& line : SplitLines(head)) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name != lower_name) continue;
      std::string value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ')) value.erase(value.begin());
      while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
      return value;
    }
    return {};
  }

  void Serve(int fd) {
    std::string data;
    char buffer[4096];
    std::size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) {
        ::close(fd);
        return;
      }
      data.append(buffer, static_cast<std::size_t>(n));
    }
    const std::string head = data.substr(0, head_end);
    std::string body = data.substr(head_end + 4);
    const std::string length_text = HeaderValue(head, "content-length");
    const std::size_t length = length_text.empty() ? 0 : std::stoul(length_text);
    while (body.size() < length) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      body.append(buffer, static_cast<std::size_t>(n));
    }
    SeenRequest request;
    std::istringstream first_line(head.substr(0, head.find("\r\n")));
    first_line >> request.method >> request.target;
    request.authorization = HeaderValue(head, "authorization");
    request.content_type = HeaderValue(head, "content-type");
    request.body = body;
    const CannedReply reply = handler_(request);
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(request);
    }
    cv_.notify_all();
    if (reply.hang) {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_.load(); });
    } else {
      std::string text = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nContent-Type: application/json\r\n" +
                         "Content-Length: " + std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n" +
                         reply.body;
      ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::vector<SeenRequest> seen_;
};

}  // namespace storeplane::agent::testing
