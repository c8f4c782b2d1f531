// Shared by the CLI test files: runs the real `storeplane` binary as a child process
// (RunCli), checks the one-line error convention, and a scripted fake API server (FakeApi).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/server_process.h"

namespace storeplane::testing {

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::ostream& operator<<(std::ostream& os, const CliRun& run) {
  return os << "exit " << run.exit_code << "\n--- stdout:\n" << run.out << "--- stderr:\n" << run.err;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline std::string CliBinary() {
  if (const char* env = std::getenv("STOREPLANE_CLI_BIN"); env != nullptr && *env != '\0') return env;
  return STOREPLANE_CLI_BIN;
}

// Runs `storeplane args...` with only PATH, HOME (an empty directory: no config file) and
// `env` in its environment; kills it after 60 s.
inline CliRun RunCli(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  static TempDir scratch;
  static int counter = 0;
  std::string base = scratch.path() + "/run" + std::to_string(++counter);
  std::string out_path = base + ".out";
  std::string err_path = base + ".err";

  std::vector<std::string> argv_storage = {CliBinary()};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage = {"PATH=/usr/bin:/bin", "HOME=" + scratch.path()};
  env_storage.insert(env_storage.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  CliRun run;
  if (rc != 0) {
    run.err = "posix_spawn failed: " + std::to_string(rc);
    return run;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      run.err = "timed out\n";
      return run;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.out = ReadAll(out_path);
  run.err = ReadAll(err_path);
  return run;
}

// Exactly one line on stderr, in the house format.
inline ::testing::AssertionResult OneErrorLine(const CliRun& run) {
  const std::string& err = run.err;
  if (err.rfind("storeplane: ", 0) != 0) return ::testing::AssertionFailure() << "stderr lacks the prefix: " << run;
  if (err.empty() || err.back() != '\n' || err.find('\n') != err.size() - 1) {
    return ::testing::AssertionFailure() << "stderr is not exactly one line: " << run;
  }
  return ::testing::AssertionSuccess();
}

// A loopback port nothing listens on: bound, then closed.
inline int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A scripted HTTP/1.1 server on a loopback port, for the paths a real server cannot be
// made to take on demand (a concurrent change between GET and PATCH) and for routes the
// CLI must handle before the server has them. One request per connection; each request
// is recorded.
class FakeApi {
 public:
  struct Request {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers;  // lower-cased names
    std::string body;
  };
  struct Reply {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
  };
  using Handler = std::function<Reply(const Request&)>;

  explicit FakeApi(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 16);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeApi() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stopping_) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      std::string data;
      char buffer[4096];
      size_t header_end = std::string::npos;
      while (header_end == std::string::npos) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        data.append(buffer, static_cast<size_t>(n));
        header_end = data.find("\r\n\r\n");
      }
      if (header_end == std::string::npos) {
        close(fd);
        continue;
      }
      Request request;
      std::istringstream head(data.substr(0, header_end));
      std::string line;
      std::getline(head, line);
      std::istringstream(line) >> request.method >> request.target;
      while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      }
      size_t length = request.headers.count("content-length") ? std::stoul(request.headers["content-length"]) : 0;
      request.body = data.substr(header_end + 4);
      while (request.body.size() < length) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        request.body.append(buffer, static_cast<size_t>(n));
      }
      Reply reply = handler_(request);
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(request);
      }
      std::string response = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nConnection: close\r\n";
      for (const auto& [name, value] : reply.headers) response += name + ": " + value + "\r\n";
      response += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n" + reply.body;
      ssize_t ignored = write(fd, response.data(), response.size());
      (void)ignored;
      close(fd);
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Request> requests_;
};

}  // namespace storeplane::testing
